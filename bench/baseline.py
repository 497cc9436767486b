"""The bare baseline that the webhook benchmark measures ingress against.

The same server stack as ingress (a Flask app under gunicorn's gthread
workers through switchboard.serve, as many workers and threads) answering
every POST to the voice webhook path with one constant TwiML document: the
form is read, but there is no signature check, no Kafka and no router. What
ingress costs beyond this is the price of its own work.

`python -m bench.baseline` serves it on BENCH_BASELINE_BIND.
"""

from __future__ import annotations

import sys

from flask import Flask, Response, jsonify, request
from twilio.twiml.voice_response import VoiceResponse

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


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/api/twilio/webhook")
    def webhook() -> Response:
        request.form.to_dict()  # read and parse the body, as any webhook server must
        return Response(TWIML, mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    return app


def main() -> int:
    bind = env_str("BENCH_BASELINE_BIND", "127.0.0.1:8099")
    serve(create_app, bind, "bench-baseline", workers=WORKERS, threads=THREADS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
