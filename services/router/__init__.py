"""The router service: who owns which number, and where its calls go.

It keeps clients and their phone numbers in PostgreSQL behind an admin-only
management API, holds every assignment in an in-memory routing table kept
fresh by LISTEN/NOTIFY, and answers ingress's `POST /internal/route` with the
TwiML that forwards (and records) a call, publishing `call.routed` to Kafka.
"""
