-- Where each consumer group's last write started, per partition: the offset
-- its batch will commit once the write is done. A write touches several
-- tables that commit one by one (call_facts, then each materialized view's
-- table, then events), so a consumer killed inside one can leave a call
-- counted twice in calls_by_client or stale there. The consumer records the
-- batch's end offsets here before it writes anything; a consumer that later
-- reads messages below that offset (the committed offset is lower: the
-- write never finished) repairs their calls before folding them again
-- (Store.repair). One row per group and partition, overwritten by
-- every batch: EmbeddedRocksDB keeps the row last written per key.
CREATE TABLE IF NOT EXISTS ${database}.writes_started
(
    partitionKey String,
    groupId String,
    topic String,
    partition UInt32,
    endOffset UInt64,
    startedAt DateTime64(3, 'UTC')
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY partitionKey;
