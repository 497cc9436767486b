"""Reporting: real-time missed-call alerts (a faust-streaming app) and client reports."""
