"""The bare baseline that the webhook benchmark measures ingress against.

The same server stack as ingress (a Flask app under gunicorn's gthread
workers through switchboard.serve, as many workers and threads) answering
every POST to the voice webhook path with one constant TwiML document: the
form is read, but there is no signature check, no Kafka and no router. What
ingress costs beyond this is the price of its own work.

With BENCH_BASELINE_UPSTREAM set to another baseline's URL it is the
two-hop baseline instead: each webhook's form is passed on to that one's
/internal/route with ingress's own router client, and its answer returned.
That is the call path with all of ingress's and router's work taken out
but the hop between them, so it shows the most any design that asks
router over HTTP for every call could reach on the same machine.

`python -m bench.baseline` serves it on BENCH_BASELINE_BIND.
"""

from __future__ import annotations

import sys

from flask import Flask, Response, jsonify, request
from twilio.twiml.voice_response import VoiceResponse

from services.ingress.router_client import RouterClient
from switchboard.serve import serve
from switchboard.settings import env_str

# As services/ingress/__main__.py serves ingress.
WORKERS = 2
THREADS = 8


def constant_twiml() -> str:
    response = VoiceResponse()
    response.say("This call may be recorded.")
    dial = response.dial(action="http://127.0.0.1/api/twilio/dial-status", timeout=20)
    dial.number("+14155559999")
    return str(response)


TWIML = constant_twiml()


def create_app(upstream: str | None = None) -> Flask:
    app = Flask(__name__)
    relay = RouterClient(upstream, timeout=1.5) if upstream else None

    @app.post("/api/twilio/webhook")
    def webhook() -> Response:
        params = request.form.to_dict()  # read and parse the body, as any webhook server must
        if relay is None:
            return Response(TWIML, mimetype="text/xml")
        return Response(relay.twiml_for(params, "two-hop"), mimetype="text/xml")

    @app.post("/internal/route")
    def route() -> Response:
        request.form.to_dict()
        return Response(TWIML, mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    return app


def main() -> int:
    bind = env_str("BENCH_BASELINE_BIND", "127.0.0.1:8099")
    upstream = env_str("BENCH_BASELINE_UPSTREAM", "") or None
    serve(lambda: create_app(upstream), bind, "bench-baseline", workers=WORKERS, threads=THREADS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
