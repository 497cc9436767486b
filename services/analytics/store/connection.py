"""The connection to ClickHouse and the lock around it, which every role of the store shares.

On chDB (one engine per process, no sessions) every call is serialized with
the lock; a second connection takes the events' inserts beside the rest.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

import clickhouse_connect
import orjson
from clickhouse_connect.driver.client import Client

from services.analytics.store.sql import _IDENTIFIER, _ONE_THREAD
from switchboard.consumer import WriterFirst


def connect(url: str) -> Client:
    """A clickhouse-connect client for CLICKHOUSE_URL (chdb:///folder or http://...)."""
    if url.startswith("chdb:"):
        return clickhouse_connect.get_client(dsn=url)
    # Without a session id the HTTP client may run queries from several threads.
    return clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)


class Connection:
    """The client(s), the lock and the plumbing every query goes through."""

    def __init__(
        self,
        client: Client,
        database: str,
        serialize: bool = True,
        events_client: Client | None = None,
    ) -> None:
        """`events_client`, a second connection, takes the events' inserts beside the rest."""
        if not _IDENTIFIER.match(database):
            raise ValueError(f"not a plain database identifier: {database!r}")
        self._client = client
        self.database = database
        self._closed = False
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if serialize else contextlib.nullcontext()
        )
        self._events_client = events_client or client
        self._events_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if serialize and events_client is not None else self._lock
        )
        self._events_writer = ThreadPoolExecutor(1, thread_name_prefix="analytics-events")
        # The consumer's writer holds this turn at the GIL while it runs
        # Python and gives it up around every call into ClickHouse (which
        # runs without the GIL), so the consumer's loop decodes meanwhile.
        self.turn = WriterFirst()

    @classmethod
    def open(cls, url: str, database: str) -> Self:
        # chDB takes any number of connections to the one engine of a process.
        return cls(connect(url), database, url.startswith("chdb:"), events_client=connect(url))

    def close(self) -> None:
        self._events_writer.shutdown(wait=True)
        with self._lock:
            if not self._closed:
                self._closed = True
                self._client.close()
                if self._events_client is not self._client:
                    self._events_client.close()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """The engine for one outside call (the ClickHouse HTTP endpoint), under the lock."""
        with self.turn.outside(), self._lock:
            yield

    def _query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.turn.outside(), self._lock:
            result = self._client.query(sql, parameters=parameters or {})
            return [tuple(row) for row in result.result_rows]

    def _command(self, sql: str) -> None:
        with self.turn.outside(), self._lock:
            self._client.command(sql)

    def _insert(self, table: str, rows: list[list[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self.turn.outside(), self._lock:
            self._client.insert(f"{self.database}.{table}", rows, column_names=list(columns))

    def _insert_json(
        self, table: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert rows as JSON lines, which ClickHouse parses in its own (GIL-free) code.

        For rows of many columns this costs Python a fraction of building the
        native format column by column: orjson writes datetimes (ISO 8601,
        read with best_effort), booleans, tuples and strings as they are.
        """
        if not rows:
            return
        body = b"\n".join(map(orjson.dumps, rows))
        with self.turn.outside(), self._lock:
            self._client.raw_insert(
                f"{self.database}.{table}",
                list(columns),
                body,
                settings={"date_time_input_format": "best_effort", **_ONE_THREAD},
                fmt="JSONEachRow",
            )

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """One statement of a module that keeps its own SQL (privacy); its rows, if any."""
        return self._query(sql, parameters)

    def ping(self) -> None:
        """Raise unless ClickHouse answers a query."""
        self._query("SELECT 1")
