"""Analytics: events from Kafka become call facts in ClickHouse, served as metrics.

The consumer folds each call's events into one fact per CallSid (the fold
is pure, in `facts`), attributes calls to clients and campaigns from number
assignments (`numbers`) and keeps each client's reporting settings
(`clients`). `store` owns the ClickHouse schema and every query; `metrics`,
`campaigns` and `calls` shape what `app` serves over HTTP: the call list and
CSV export, summary, time series, durations, peak hours, callers,
geography, lead quality, campaigns with ROI, missed calls and conversions.
"""
