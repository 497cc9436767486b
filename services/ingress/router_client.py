"""How ingress asks router for TwiML: an incoming call's (`POST /internal/route`), and
what follows a ringing <Dial> of a number's call flow (`POST /internal/flow/after-dial`).

Router is told who called which number, not all of Twilio's form: it decides
by the called number alone (and, after a <Dial>, by how it ended and the
flow's step). Any failure (refused, timed out, a non-TwiML answer) is a
`RouterUnavailable`, on which ingress answers its fallback TwiML.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

ROUTING_FIELDS = ("CallSid", "AccountSid", "From", "To", "Direction")
AFTER_DIAL_FIELDS = ("CallSid", "To", "DialCallStatus", "DialBridged", "flowStep")


class RouterUnavailable(Exception):
    pass


class RouterClient:
    """Asks router for a call's TwiML; each request thread keeps its own connection open.

    http.client on a kept-alive connection costs the request thread a third
    less than a pooled client library. Router closes idle connections (after
    gunicorn's keep-alive), so a request that fails on a reused connection
    before any answer is tried once more on a new one. The timeout bounds
    each connect and each read.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self._connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self.path = parts.path.rstrip("/") + "/internal/route"
        self.after_dial_path = parts.path.rstrip("/") + "/internal/flow/after-dial"
        self.timeout = timeout
        self._local = threading.local()

    def twiml_for(self, params: Mapping[str, str], request_id: str) -> str:
        """Router's TwiML for the call these webhook fields describe, or raise RouterUnavailable."""
        return self._ask(self.path, params, ROUTING_FIELDS, request_id)

    def after_dial_for(self, params: Mapping[str, str], request_id: str) -> str:
        """Router's TwiML after a flow's <Dial> (params carry flowStep), or RouterUnavailable."""
        return self._ask(self.after_dial_path, params, AFTER_DIAL_FIELDS, request_id)

    def _ask(
        self, path: str, params: Mapping[str, str], fields: tuple[str, ...], request_id: str
    ) -> str:
        form = urlencode({name: params[name] for name in fields if name in params}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Request-Id": request_id}
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        fresh = connection is None
        while True:
            if connection is None:
                connection = self._connect()
            try:
                status, text = self._post(connection, path, form, headers)
                break
            except (OSError, http.client.HTTPException) as err:
                self._drop(connection)
                if fresh or isinstance(err, TimeoutError):
                    raise RouterUnavailable(f"router unreachable: {type(err).__name__}") from err
                connection, fresh = None, True  # router closed the kept one: once more
        if status != 200 or "<Response" not in text:
            raise RouterUnavailable(f"router answered {status}")
        return text

    def _post(
        self,
        connection: http.client.HTTPConnection,
        path: str,
        form: bytes,
        headers: dict[str, str],
    ) -> tuple[int, str]:
        connection.request("POST", path, body=form, headers=headers)
        reply = connection.getresponse()
        text = reply.read().decode("utf-8", "replace")
        if reply.will_close:
            self._drop(connection)
        return reply.status, text

    def _connect(self) -> http.client.HTTPConnection:
        connection = self._connection_class(self._host, self._port, timeout=self.timeout)
        self._local.connection = connection
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
