-- The tokens of erased callers (services/analytics/privacy.py): never their numbers.
CREATE TABLE IF NOT EXISTS ${database}.erased_callers
(
    token String,
    erasedAt DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY token;
