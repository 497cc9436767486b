"""Benchmarks and the fault harness: how fast Switchboard is, and what survives when parts die.

The call path (`webhook`, `e2e`, `faults`) brings up a Switchboard of its own
on loopback for each run (`stack`), drives it with signed webhooks or the
Twilio simulator's call lifecycles, and prints what it measured;
`analytics` measures the analytics store and consumer. None of it is part
of `make test` (tests/faults runs the fault scenarios in a short form).
"""
