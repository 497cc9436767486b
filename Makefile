# Switchboard: `make run` brings the whole system up on this machine,
# `make test` runs the test suite. Both install what they need themselves:
# a virtualenv in .venv (re-installed only when pyproject.toml changes), the
# Kafka jars in .cache/ (Maven), PostgreSQL and nginx (apt-get) when missing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test lint kafka-jars clean distclean

run: $(STAMP)
	$(VENV)/bin/switchboard run $(ARGS)

# One test process by default; TEST_WORKERS=2 splits the suite over two
# (pytest-xdist, whole modules each so a module's stack starts once): about
# half the time, but the doubled load still trips a few timing-sensitive tests.
TEST_WORKERS ?= 0
test: $(STAMP)
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check switchboard services devstack bench tests
	$(VENV)/bin/mypy switchboard services devstack bench

kafka-jars: $(STAMP)
	$(VENV)/bin/python -c 'from devstack.kafka import ensure_jars; print(ensure_jars())'

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Stops nothing: `make run` stops its own processes on Ctrl-C.
clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf .cache

# Simulated calls for a few clients through a running `make run` (CALLS=60).
CALLS ?= 60
.PHONY: demo
demo: $(STAMP)
	$(VENV)/bin/switchboard demo --calls $(CALLS)

# The load and fault harness (bench/; not part of `make test`). Each target
# brings up a Switchboard of its own on loopback, prints its progress and
# one table; BENCH_ARGS passes options on (`python -m bench.<part> --help`).
# `make bench` runs the three in turn and fails if any of them did.
BENCH_ARGS ?=
.PHONY: bench bench-webhook bench-e2e bench-faults
bench: $(STAMP)
	@status=0; for part in webhook e2e faults; do \
		echo "== make bench-$$part"; \
		$(VENV)/bin/python -m bench.$$part || status=1; \
	done; exit $$status

bench-webhook: $(STAMP)
	$(VENV)/bin/python -m bench.webhook $(BENCH_ARGS)

bench-e2e: $(STAMP)
	$(VENV)/bin/python -m bench.e2e $(BENCH_ARGS)

bench-faults: $(STAMP)
	$(VENV)/bin/python -m bench.faults $(BENCH_ARGS)

# Missed-call alert latency (bench/alerts.py; not part of `make test`): 200
# unanswered simulated calls, from the dial-result webhook to the alert email
# in the stack's mail catcher; p50 and p95 (target p95 under 5 s).
.PHONY: bench-alerts
bench-alerts: $(STAMP)
	$(VENV)/bin/python -m bench.alerts $(BENCH_ARGS)

# The analytics benchmark (bench/analytics; not part of `make test`): loads
# ANALYTICS_CALLS synthetic calls (10 million) for 1,000 clients over a year
# into chDB, measures every metrics endpoint and the consumer's ingest from
# Kafka. A quick run: `make bench-analytics ANALYTICS_CALLS=1000000`.
ANALYTICS_CALLS ?= 10000000
.PHONY: bench-analytics
bench-analytics: $(STAMP)
	$(VENV)/bin/python -m bench.analytics --calls $(ANALYTICS_CALLS) $(BENCH_ARGS)

# Every Grafana panel query through analytics' read-only ClickHouse HTTP
# endpoint beside the engine and the analytics API, on ANALYTICS_CALLS calls.
.PHONY: bench-grafana
bench-grafana: $(STAMP)
	$(VENV)/bin/python -m bench.grafana --calls $(ANALYTICS_CALLS) $(BENCH_ARGS)

# The client reports' benchmark (bench/reports.py; not part of `make test`):
# loads REPORT_CALLS synthetic calls (10 million) as bench-analytics does, then
# times building one client's monthly report (figures from the analytics API,
# charts, HTML, PDF, files, email). A quick run: `make bench-reports REPORT_CALLS=1000000`.
REPORT_CALLS ?= 10000000
.PHONY: bench-reports
bench-reports: $(STAMP)
	$(VENV)/bin/python -m bench.reports --calls $(REPORT_CALLS) $(BENCH_ARGS)
