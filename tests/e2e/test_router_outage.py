"""With router down, callers still hear TwiML and the call still counts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.e2e.conftest import System, number
from tests.support import ServiceProcess, wait_until
from tests.twilio_calls import ForwardedCall


def test_router_stopped_callers_get_fallback_twiml_and_the_call_still_counts(
    system: System,
) -> None:
    # How long ingress waits for router is its config's job (ROUTER_TIMEOUT_SECONDS);
    # speed is measured in bench/, not asserted here.
    client_id = system.new_client("+14155556666")
    tracked = number()
    system.assign(client_id, tracked)
    router = system.services["router"]
    router.stop()
    try:
        call = ForwardedCall(to=tracked, forward_to="+14155556666")
        reply = system.twilio(call.incoming())
        assert reply.status_code == 200
        root = ET.fromstring(reply.text)
        assert root.find("Say") is not None and root.find("Dial") is None
        system.twilio(call.unanswered()[-1])  # the parent's completed callback

        fact = wait_until(
            lambda: (lambda f: f if f["status"] == "failed" else None)(system.call(call.call_sid)),
            timeout=5.0,
            message="fallback call counted",
        )
        assert fact["answered"] is False
    finally:
        system.services["router"] = ServiceProcess(
            "router", system.env, port=router.port, log_dir=router.log_file.parent
        ).start()
