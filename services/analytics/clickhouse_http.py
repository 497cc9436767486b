"""ClickHouse's HTTP interface over the embedded chDB, read-only, for Grafana and other clients.

On the embedded default the data lives in chDB inside the analytics process,
where no ClickHouse port exists. This endpoint serves the parts of the HTTP
interface that clients use (`/ping`; `GET`/`POST /` with the query in `query=`
or the body; `database`, `default_format`, `param_*` and settings as
parameters; HTTP basic auth or `X-ClickHouse-User`/`X-ClickHouse-Key`) for
one user who may only read. Results come in the format asked for, written by
the engine itself, with the headers clients read (X-ClickHouse-Summary,
-Format, -Query-Id, -Timezone, -Server-Display-Name); errors come as a
server's do: `Code: N. DB::Exception: ...` with its HTTP status and the
X-ClickHouse-Exception-Code header.

Reads are enforced twice: only SELECT, WITH, SHOW, DESCRIBE, EXISTS and
EXPLAIN statements pass (`check_statement`), and they run on a chDB handle
of their own with the limits set and then `readonly = 1`, so the engine
refuses any write, DDL or change of a setting with its own error. The handle
shares the engine and the store's lock: a query here waits its turn like the
API's and the consumer's. `ClickHouseHttpServer` serves it from a threaded
WSGI server on a second socket of the process that owns chDB (see
docs/grafana.md for why not a second gunicorn bind).
"""

from __future__ import annotations

import base64
import gzip
import hmac
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from services.analytics.clickhouse_native import UnsupportedType, at_revision
from services.analytics.config import ClickHouseHttp
from services.analytics.store import Store

log = logging.getLogger(__name__)

READ_STATEMENTS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})

# Parameters the HTTP layer reads itself; every other one (not param_*) is a setting.
TRANSPORT_PARAMETERS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "query_id",
        "quota_key",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "role",
        "stacktrace",
        "enable_http_compression",
        "http_zlib_compression_level",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "http_wait_end_of_query",
        "add_http_cors_header",
    }
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
_CODE = re.compile(r"Code: (\d+)\. DB::Exception: ")
_ERROR_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")

# ClickHouse's exceptionCodeToHTTPStatus, for the codes this endpoint meets.
_STATUS = {
    194: 401,  # REQUIRED_PASSWORD
    192: 403,  # UNKNOWN_USER
    193: 403,  # WRONG_PASSWORD
    497: 403,  # ACCESS_DENIED
    516: 403,  # AUTHENTICATION_FAILED
    36: 400,  # BAD_ARGUMENTS
    62: 400,  # SYNTAX_ERROR
    27: 400,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    6: 400,  # CANNOT_PARSE_TEXT
    53: 400,  # TYPE_MISMATCH
    117: 400,  # INCORRECT_DATA
    47: 404,  # UNKNOWN_IDENTIFIER
    46: 404,  # UNKNOWN_FUNCTION
    60: 404,  # UNKNOWN_TABLE
    81: 404,  # UNKNOWN_DATABASE
    115: 404,  # UNKNOWN_SETTING
    73: 404,  # UNKNOWN_FORMAT
    50: 404,  # UNKNOWN_TYPE
    63: 404,  # UNKNOWN_AGGREGATE_FUNCTION
    48: 501,  # NOT_IMPLEMENTED
    159: 408,  # TIMEOUT_EXCEEDED
}

_CONTENT_TYPES = (
    ("JSON", "application/json; charset=UTF-8"),
    ("TabSeparated", "text/tab-separated-values; charset=UTF-8"),
    ("TSV", "text/tab-separated-values; charset=UTF-8"),
    ("CSVWithNames", "text/csv; charset=UTF-8; header=present"),
    ("CSV", "text/csv; charset=UTF-8; header=absent"),
    ("Native", "application/octet-stream"),
    ("RowBinary", "application/octet-stream"),
    ("Parquet", "application/octet-stream"),
    ("Arrow", "application/octet-stream"),
    ("ORC", "application/octet-stream"),
)


class ClickHouseError(Exception):
    """An error to answer as ClickHouse does: its code, symbolic name and message."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message

    @classmethod
    def from_engine(cls, error: BaseException, user: str) -> ClickHouseError:
        """chDB's exception text (which may repeat its `Code: N` prefix) as one error."""
        text = str(error)
        matches = list(_CODE.finditer(text))
        if not matches:
            return cls(1001, "STD_EXCEPTION", text.strip())
        message = text[matches[-1].end() :].split(" (version ")[0].strip()
        if message.startswith("default: "):
            message = f"{user}: " + message.removeprefix("default: ")
        named = _ERROR_NAME.search(message)
        name = named.group(1) if named else ""
        if named:
            message = message[: named.start()].rstrip()
        return cls(int(matches[-1].group(1)), name, message)

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 500)

    def body(self, version: str) -> bytes:
        name = f" ({self.name})" if self.name else ""
        text = f"Code: {self.code}. DB::Exception: {self.message}{name} (version {version})\n"
        return text.encode()


def readonly_error(user: str) -> ClickHouseError:
    return ClickHouseError(164, "READONLY", f"{user}: Cannot execute query in readonly mode.")


def _strip(sql: str) -> str:
    """`sql` with comments removed and string literals and quoted names blanked.

    What is left can be searched for keywords and `;` without a literal's
    content ('...; DROP ...') being taken for SQL.
    """
    out: list[str] = []
    index, size = 0, len(sql)
    while index < size:
        char = sql[index]
        if sql.startswith("--", index) or char == "#":
            end = sql.find("\n", index)
            index = size if end < 0 else end
        elif sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            index = size if end < 0 else end + 2
            out.append(" ")
        elif char in "'\"`":
            end = index + 1
            while end < size and sql[end] != char:
                end += 2 if sql[end] == "\\" else 1
            out.append(char + char)
            index = end + 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


@dataclass(frozen=True)
class Statement:
    """A query found fit to run: its text without a trailing `;` and the format it names, if any."""

    sql: str
    format: str | None


# A FORMAT clause ends the query (ClickHouse allows SETTINGS after it).
_FORMAT_CLAUSE = re.compile(
    r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*(?:\bSETTINGS\b[^()]*)?$", re.IGNORECASE | re.DOTALL
)
_SET_NAME = re.compile(r"\bSET\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def check_statement(sql: str, user: str) -> Statement:
    """`sql` if it is one read statement; else the ClickHouseError a readonly server gives."""
    bare = _strip(sql).strip()
    while bare.endswith(";"):
        bare = bare[:-1].rstrip()
    if not bare:
        raise ClickHouseError(62, "SYNTAX_ERROR", "Empty query.")
    if ";" in bare:
        raise ClickHouseError(62, "SYNTAX_ERROR", "Multi-statements are not allowed.")
    first = re.match(r"[\s(]*([A-Za-z]+)", bare)
    keyword = first.group(1).upper() if first else ""
    if keyword == "SET":
        names = _SET_NAME.match(bare.lstrip("( \n\t"))
        setting = names.group(1) if names else "readonly"
        message = f"Cannot modify '{setting}' setting in readonly mode."
        raise ClickHouseError(164, "READONLY", message)
    if keyword not in READ_STATEMENTS:
        raise readonly_error(user)
    if re.search(r"\bINTO\s+OUTFILE\b", bare, re.IGNORECASE):
        raise ClickHouseError(344, "SUPPORT_IS_DISABLED", "INTO OUTFILE is not allowed.")
    text = sql.rstrip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    named = _FORMAT_CLAUSE.search(bare)
    return Statement(text, named.group(1) if named else None)


def settings_clause(settings: Mapping[str, str]) -> str:
    """A SETTINGS clause for the request's settings (the readonly engine judges each change)."""
    parts = []
    for name, value in settings.items():
        if not _IDENTIFIER.match(name):
            raise ClickHouseError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'.")
        parts.append(f"{name} = '" + value.replace("\\", "\\\\").replace("'", "\\'") + "'")
    return "\nSETTINGS " + ", ".join(parts) if parts else ""


def content_type(fmt: str) -> str:
    for prefix, kind in _CONTENT_TYPES:
        if fmt.startswith(prefix):
            return kind
    return "text/plain; charset=UTF-8"


@dataclass(frozen=True)
class Result:
    body: bytes
    read_rows: int
    read_bytes: int
    elapsed_ns: int


class ReadOnlyEngine:
    """A chDB handle of its own on the store's engine: limited, then `readonly = 1`.

    Every call takes the store's lock, so it runs between the API's and the
    consumer's statements, never beside them.
    """

    def __init__(self, store: Store, folder: str, limits: ClickHouseHttp) -> None:
        # Imported here, in the process that serves: a gunicorn master that
        # imported chDB before forking leaves the worker's engine stuck.
        import chdb

        self._store = store
        self._database: str | None = None
        with store.exclusive():
            self._conn = chdb.connect(os.path.realpath(folder))
            for statement in (
                f"SET max_execution_time = {limits.max_execution_time}",
                f"SET max_result_rows = {int(limits.max_result_rows)}",
                "SET result_overflow_mode = 'throw'",
                f"SET max_memory_usage = {int(limits.max_memory_usage)}",
                "SET readonly = 1",
            ):
                self._conn.query(statement, "TabSeparated")
            row = self._conn.query("SELECT displayName(), version(), timezone()", "TabSeparated")
        self.display_name, self.version, self.timezone = row.bytes().decode().strip().split("\t")

    def run(
        self, sql: str, fmt: str, parameters: Mapping[str, str], database: str, user: str
    ) -> Result:
        with self._store.exclusive():
            try:
                if database != self._database:
                    self._conn.query(f"USE {database}", "TabSeparated")
                    self._database = database
                result = self._conn.query(sql, fmt, params=dict(parameters))
            except Exception as err:  # chDB raises RuntimeError with ClickHouse's text
                raise ClickHouseError.from_engine(err, user) from None
        return Result(
            body=result.bytes() or b"",
            read_rows=int(result.rows_read()),
            read_bytes=int(result.bytes_read()),
            elapsed_ns=int(result.elapsed() * 1e9),
        )

    def close(self) -> None:
        with self._store.exclusive():
            self._conn.close()


class ClickHouseHttpApp:
    """The WSGI app: authentication, the statement check, the engine, ClickHouse's replies."""

    def __init__(self, engine: ReadOnlyEngine, limits: ClickHouseHttp, database: str) -> None:
        self._engine = engine
        self._user = limits.user
        self._password = limits.password.encode()
        self._loopback_default = limits.loopback_default_user
        self._database = database

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        query_id = str(uuid.uuid4())
        headers = [("X-ClickHouse-Server-Display-Name", self._engine.display_name)]
        if path in ("/ping", "/replicas_status"):
            return self._reply(start_response, 200, b"Ok.\n", headers, "text/html; charset=UTF-8")
        if path != "/":
            error = ClickHouseError(
                36, "BAD_ARGUMENTS", f"There is no handle {path}. Use / or /ping."
            )
            return self._error(start_response, error, headers)
        method = environ.get("REQUEST_METHOD", "GET")
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        body = self._body(environ) if method == "POST" else b""
        if "query" not in params and not body.strip():
            return self._reply(start_response, 200, b"Ok.\n", headers, "text/html; charset=UTF-8")
        query_id = params.get("query_id") or query_id
        headers.append(("X-ClickHouse-Query-Id", query_id))
        try:
            self._authenticate(environ, params)
            sql = "\n".join(part for part in (params.get("query", ""), body.decode()) if part)
            statement = check_statement(sql, self._user)
            return self._query(start_response, environ, params, statement, headers)
        except ClickHouseError as error:
            return self._error(start_response, error, headers)
        except UnicodeDecodeError:
            invalid = ClickHouseError(36, "BAD_ARGUMENTS", "The query is not valid UTF-8.")
            return self._error(start_response, invalid, headers)

    def _body(self, environ: dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        raw = stream.read(length) if length else stream.read()
        if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        return bytes(raw)

    def _authenticate(self, environ: dict[str, Any], params: Mapping[str, str]) -> None:
        user, password = "default", ""
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ":"
            user, _, password = decoded.partition(":")
        elif "HTTP_X_CLICKHOUSE_USER" in environ:
            user = environ["HTTP_X_CLICKHOUSE_USER"]
            password = environ.get("HTTP_X_CLICKHOUSE_KEY", "")
        elif "user" in params:
            user, password = params["user"], params.get("password", "")
        elif self._loopback_default and environ.get("REMOTE_ADDR", "") in _LOOPBACK:
            return
        known = hmac.compare_digest(user.encode(), self._user.encode())
        if not (hmac.compare_digest(password.encode(), self._password) and known):
            raise ClickHouseError(
                516,
                "AUTHENTICATION_FAILED",
                f"{user}: Authentication failed: password is incorrect, "
                "or there is no user with such name.",
            )

    def _query(
        self,
        start_response: Callable[..., Any],
        environ: dict[str, Any],
        params: Mapping[str, str],
        statement: Statement,
        headers: list[tuple[str, str]],
    ) -> Iterable[bytes]:
        if params.get("compress") in ("1", "true"):
            # ClickHouse's own block compression of the body; clients that ask
            # for it would read plain bytes as LZ4 frames.
            raise ClickHouseError(
                48, "NOT_IMPLEMENTED", "compress=1 is not served here; use HTTP compression"
            )
        fmt = statement.format or params.get("default_format") or "TabSeparated"
        database = params.get("database") or self._database
        if not _IDENTIFIER.match(database):
            raise ClickHouseError(81, "UNKNOWN_DATABASE", f"Database {database} does not exist.")
        settings = {
            name: value
            for name, value in params.items()
            if name not in TRANSPORT_PARAMETERS
            and not name.startswith("param_")
            and not name.endswith(("_structure", "_format", "_types"))
        }
        parameters = {
            name.removeprefix("param_"): value
            for name, value in params.items()
            if name.startswith("param_")
        }
        sql = statement.sql + settings_clause(settings)
        result = self._engine.run(sql, fmt, parameters, database, self._user)
        body = result.body
        revision = int(params.get("client_protocol_version") or 0)
        if fmt == "Native" and revision > 0:
            try:
                body = at_revision(body, revision)
            except UnsupportedType as err:
                raise ClickHouseError(48, "NOT_IMPLEMENTED", str(err)) from None
        summary = {
            "read_rows": str(result.read_rows),
            "read_bytes": str(result.read_bytes),
            "written_rows": "0",
            "written_bytes": "0",
            "total_rows_to_read": str(result.read_rows),
            "result_bytes": str(len(body)),
            "elapsed_ns": str(result.elapsed_ns),
        }
        headers += [
            ("X-ClickHouse-Format", fmt),
            ("X-ClickHouse-Timezone", self._engine.timezone),
            ("X-ClickHouse-Summary", orjson.dumps(summary).decode()),
        ]
        accepts = environ.get("HTTP_ACCEPT_ENCODING", "").lower()
        if params.get("enable_http_compression") in ("1", "true") and "gzip" in accepts:
            body = gzip.compress(body, compresslevel=3)
            headers.append(("Content-Encoding", "gzip"))
        return self._reply(start_response, 200, body, headers, content_type(fmt))

    def _error(
        self,
        start_response: Callable[..., Any],
        error: ClickHouseError,
        headers: list[tuple[str, str]],
    ) -> Iterable[bytes]:
        headers = [*headers, ("X-ClickHouse-Exception-Code", str(error.code))]
        body = error.body(self._engine.version)
        return self._reply(start_response, error.status, body, headers, "text/plain; charset=UTF-8")

    @staticmethod
    def _reply(
        start_response: Callable[..., Any],
        status: int,
        body: bytes,
        headers: list[tuple[str, str]],
        kind: str,
    ) -> Iterable[bytes]:
        reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
        start_response(
            f"{status} {reason.get(status, 'Error')}",
            [
                *headers,
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Keep-Alive", "timeout=10"),
            ],
        )
        return [body]


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request (the API's access log is off too)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class ClickHouseHttpServer:
    """The endpoint on its own socket, served by threads of the process that owns chDB."""

    def __init__(self, store: Store, folder: str, limits: ClickHouseHttp, database: str) -> None:
        self.engine = ReadOnlyEngine(store, folder, limits)
        host, _, port = limits.bind.rpartition(":")
        app = ClickHouseHttpApp(self.engine, limits, database)
        try:
            self._server: BaseWSGIServer = make_server(
                host, int(port), app, threaded=True, request_handler=_QuietHandler
            )
        except (OSError, SystemExit) as err:  # werkzeug exits when the port is taken
            self.engine.close()
            raise OSError(f"CLICKHOUSE_HTTP_BIND {limits.bind} cannot be bound: {err}") from err
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="clickhouse-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> ClickHouseHttpServer:
        self._thread.start()
        log.info("ClickHouse HTTP (read-only) on %s:%s", self._server.host, self.port)
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.engine.close()
