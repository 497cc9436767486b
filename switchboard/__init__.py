"""Switchboard's shared kernel: what every service needs and nothing more.

The event envelope and its schemas (`events`), Kafka set-up (`kafka`),
configuration from the environment (`settings`), JSON logging (`logs`),
bearer-token checks (`auth`) and the JSON error shape at the HTTP edge
(`http`). Service code lives in `services/<name>`; no service imports another.
"""
