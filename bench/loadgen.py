"""An open-loop HTTP/1.1 load generator on asyncio, for loopback targets only.

Requests are sent on a fixed schedule (`rate` per second), whether or not
earlier ones have been answered, over a pool of keep-alive connections; each
latency is measured from the moment the request was due, so time spent
waiting for a free connection counts (no coordinated omission). Requests are
prepared bytes (signed in advance), so the generator spends its CPU on
sending and reading only. A step is bounded: it schedules for `duration`
seconds, then waits at most `grace` seconds for the stragglers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address

from bench.report import percentile

# gunicorn closes keep-alive connections idle for 2 s; never reuse one near that.
MAX_IDLE_SECONDS = 1.0


@dataclass
class StepResult:
    offered_rps: float
    duration: float
    sent: int = 0
    answered: int = 0
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, of 2xx answers
    elapsed: float = 0.0

    @property
    def achieved_rps(self) -> float:
        """2xx answers per second over the step (its schedule plus the stragglers)."""
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def failed(self) -> int:
        """Requests that got no answer or an answer other than 2xx."""
        return self.sent - len(self.latencies)

    @property
    def failure_ratio(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    def p(self, share: float) -> float:
        """A latency percentile in milliseconds."""
        return percentile(self.latencies, share) * 1000


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


class LoadGenerator:
    """Sends prepared requests to one loopback host:port."""

    def __init__(self, host: str, port: int, max_connections: int = 64) -> None:
        if not ip_address(host).is_loopback:
            raise ValueError(f"load is only ever sent to loopback addresses, not {host}")
        self.host = host
        self.port = port
        self.max_connections = max_connections

    def run(
        self,
        requests: Iterator[bytes],
        rate: float,
        duration: float,
        grace: float = 5.0,
        timeout: float = 10.0,
    ) -> StepResult:
        return asyncio.run(self._step(requests, rate, duration, grace, timeout))

    async def _step(
        self,
        requests: Iterator[bytes],
        rate: float,
        duration: float,
        grace: float,
        timeout: float,
    ) -> StepResult:
        result = StepResult(rate, duration)
        idle: list[_Connection] = []
        slots = asyncio.Semaphore(self.max_connections)
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        started = loop.time()
        total = max(1, int(rate * duration))

        def take_idle() -> _Connection | None:
            """The most recently used idle connection; ones idle too long are closed."""
            while idle:
                conn = idle.pop()
                if loop.time() - conn.idle_since < MAX_IDLE_SECONDS:
                    return conn
                conn.close()
            return None

        async def one(request: bytes, due: float) -> None:
            async with slots:
                for attempt in range(2):
                    conn = take_idle() if attempt == 0 else None
                    reused = conn is not None
                    try:
                        if conn is None:
                            streams = await asyncio.wait_for(
                                asyncio.open_connection(self.host, self.port), timeout
                            )
                            conn = _Connection(*streams)
                        status, keep = await asyncio.wait_for(
                            self._exchange(conn, request), timeout
                        )
                    except TimeoutError:
                        if conn is not None:
                            conn.close()
                        result.errors += 1
                        result.error_kinds["timeout"] += 1
                        return
                    except (OSError, asyncio.IncompleteReadError, ValueError) as err:
                        if conn is not None:
                            conn.close()
                        # A kept-alive connection the server closed meanwhile: once more, anew.
                        if reused and attempt == 0:
                            continue
                        result.errors += 1
                        result.error_kinds[type(err).__name__] += 1
                        return
                    result.answered += 1
                    result.statuses[status] += 1
                    if 200 <= status < 300:
                        result.latencies.append(loop.time() - due)
                    if keep:
                        conn.idle_since = loop.time()
                        idle.append(conn)
                    else:
                        conn.close()
                    return

        for index in range(total):
            due = started + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                request = next(requests)
            except StopIteration:
                break
            task = asyncio.create_task(one(request, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            result.sent += 1
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=grace)
            for task in pending:
                task.cancel()
                result.errors += 1
                result.error_kinds["unanswered after the step"] += 1
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        result.elapsed = loop.time() - started
        for conn in idle:
            conn.close()
        return result

    @staticmethod
    async def _exchange(conn: _Connection, request: bytes) -> tuple[int, bool]:
        """Send one request, read one response; (status, connection may be kept)."""
        conn.writer.write(request)
        await conn.writer.drain()
        head = await conn.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError(f"not an HTTP response: {lines[0]!r}")
        status = int(parts[1])
        length = 0
        keep = parts[0] == "HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection":
                keep = value.strip().lower() == "keep-alive" or (
                    keep and value.strip().lower() != "close"
                )
            elif name == "transfer-encoding" and "chunked" in value.lower():
                raise ValueError("chunked responses are not expected here")
        if length:
            await conn.reader.readexactly(length)
        return status, keep


def http_post(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes of one HTTP/1.1 POST with a keep-alive connection."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
