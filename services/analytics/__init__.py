"""Analytics: call events from Kafka become call facts in ClickHouse, served as an API.

The consumer folds each call's events into one fact row per CallSid (the fold
is pure, in `facts`), `store` owns the ClickHouse schema and every query, and
`app` serves the call list, CSV export and summary metrics over HTTP.
"""
