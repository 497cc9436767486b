"""Every service answers the operators' endpoints: /healthz, /readyz and /metrics."""

from __future__ import annotations

import requests

from tests.e2e.conftest import System
from tests.twilio_calls import ForwardedCall


def test_every_service_is_alive_ready_and_exposes_prometheus_metrics(system: System) -> None:
    call = ForwardedCall(to="+14155550177", forward_to="+14155550000")
    assert system.twilio(call.incoming()).status_code == 200
    for name in ("ingress", "router", "analytics", "recordings"):
        url = system.services[name].url
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200, name
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200, name
        metrics = requests.get(f"{url}/metrics", timeout=5)
        assert metrics.status_code == 200, name
        assert f'service="{name}"' in metrics.text, name
        assert "http_request_duration_seconds_bucket" in metrics.text, name
    ingress = requests.get(f"{system.services['ingress'].url}/metrics", timeout=5).text
    assert 'events_produced_total{service="ingress",type="call.received"}' in ingress
    assert "ingress_spool_depth" in ingress
