"""The analytics benchmark: `make bench-analytics` (CALLS=... for a smaller run).

Loads synthetic call facts for 1,000 clients over a year into chDB through
the same path the consumer writes (call_facts, whose materialized views fill
calls_by_client and client_hourly), then measures each metrics endpoint's
latency through the real Flask app, and the consumer's ingest rate from a
real Kafka broker.
"""
