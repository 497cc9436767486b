"""The router service: who owns which number, and where its calls go.

It keeps clients, their settings and phone numbers, the pool of unassigned
numbers, client API keys and the audit log in PostgreSQL behind the
management API (admin token or client key), buys numbers and places outbound
calls through the Twilio REST API, keeps each number's configuration at
Twilio in step with who holds it (its webhooks here, and a fallback that
forwards to the client's phone when this deployment is down), holds every
assignment in an in-memory routing table kept fresh by LISTEN/NOTIFY, and
answers ingress's `POST /internal/route` with the TwiML that forwards (and
records) a call, publishing `call.routed` to Kafka. Its own facts (client
settings, number assignments, placed calls) leave through a transactional
outbox.
"""
