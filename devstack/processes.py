"""Child processes that write to a log file and never outlive their parent.

Every embedded part (the broker, PostgreSQL, nginx, the services) is started
as a `Child`: in its own session, so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the parts in order; and, where util-linux's
`setpriv` exists, with a parent-death signal, so a supervisor that is killed
outright takes its children with it. The parent-death signal is tied to the
thread that started the child: start children from a thread that lives as
long as they should.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")


class StartError(RuntimeError):
    """A component did not come up; the message carries the reason and its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(host: str, port: int, what: str) -> None:
    """Raise StartError when something already listens where `what` should."""
    if port_open(host, port):
        raise StartError(f"{what}: port {port} on {host} is already in use")


def split_address(address: str) -> tuple[str, int]:
    """'127.0.0.1:8081' -> ('127.0.0.1', 8081)."""
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    Raises TimeoutError naming `message` when `timeout` seconds pass first.
    The default is generous: it only matters when the condition never holds,
    and a busy shared machine can be slow to get there.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not reached within {timeout:.1f}s")
        time.sleep(interval)


def healthy(url: str, path: str = "/healthz") -> bool:
    """True when GET url+path answers 200 within a second."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file (empty when there is none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _pdeathsig_prefix(sig: signal.Signals) -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return []
    return [setpriv, "--pdeathsig", sig.name.removeprefix("SIG")]


class Child:
    """One child process, its log file, and how to stop it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_file: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        append_log: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.append_log = append_log
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Child:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab" if self.append_log else "wb")
        try:
            self._process = subprocess.Popen(
                _pdeathsig_prefix(self.stop_signal) + self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
            )
        except OSError as err:
            self._log.close()
            raise StartError(f"{self.name}: cannot start {self.argv[0]}: {err}") from err
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log_file, lines)

    def fail(self, reason: str) -> StartError:
        """A StartError for this child with the end of its log attached."""
        tail = self.tail()
        where = f" (log: {self.log_file})"
        return StartError(f"{self.name}: {reason}{where}" + (f"\n{tail}" if tail else ""))

    def check_alive(self) -> None:
        """Raise StartError when the process has already exited."""
        if self._process is not None and self._process.poll() is not None:
            raise self.fail(f"exited with code {self._process.returncode}")

    def wait_healthy(self, url: str, timeout: float, what: str = "") -> None:
        """Wait until `url`/healthz answers 200; on exit or timeout stop this child and
        raise StartError with the end of its log (`what` names the URL in it)."""
        deadline = time.monotonic() + timeout
        try:
            while not healthy(url):
                self.check_alive()
                if time.monotonic() > deadline:
                    raise self.fail(f"no answer on {what or url}/healthz within {timeout:.0f}s")
                time.sleep(0.1)
        except BaseException:
            self.stop(timeout=15)
            raise

    def stop(self, timeout: float = 20.0) -> int | None:
        """Ask the process to stop, wait, then kill its whole process group."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            try:
                process.send_signal(self.stop_signal)
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        # Whatever is left in the group (workers of a killed master) goes too.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        code = process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


def read_pid(pid_file: Path) -> int | None:
    """The pid on the first line of a pid file, or None."""
    try:
        return int(pid_file.read_text().splitlines()[0].strip())
    except (OSError, ValueError, IndexError):
        return None


def stop_stray(
    pid: int | None, markers: Sequence[str], sig: signal.Signals, what: str, timeout: float = 30
) -> None:
    """Stop a process of ours that a killed supervisor left behind.

    Only a live process whose command line holds every one of `markers` is
    touched, so a stale pid file never hits an unrelated process.
    """
    if pid is None:
        return
    proc = Path(f"/proc/{pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return
    if not all(marker in cmdline for marker in markers):
        return
    print(f"devstack: stopping a leftover {what} (pid {pid})", file=sys.stderr, flush=True)
    try:
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while proc.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.exists():
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
