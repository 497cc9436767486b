"""CPU time of processes on this machine, read from /proc (Linux).

A service here is a gunicorn master with its workers, so a part's CPU is
that of a process and all its descendants. The benchmarks divide what a
part used during a step by the requests of that step: the CPU each part
spends per request, a figure that holds better than a rate on a machine
that other work shares.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


def _read_stat(path: Path) -> tuple[str, list[str]] | None:
    """(command, the fields after it) of a /proc stat file, None once it is gone."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()


def _stat(pid: int) -> list[str] | None:
    found = _read_stat(_PROC / str(pid) / "stat")
    return found[1] if found else None


def _seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def process_seconds(pid: int | None) -> float:
    """User plus system CPU seconds of one process so far (0 when it cannot be read)."""
    fields = _stat(pid) if pid is not None else None
    return _seconds(fields) if fields else 0.0


def thread_seconds() -> dict[int, tuple[str, float]]:
    """(name, CPU seconds) of every thread of this process, by native thread id."""
    found = {}
    for task in (_PROC / "self" / "task").iterdir():
        stat = _read_stat(task / "stat")
        if stat is not None:  # else the thread ended meanwhile
            found[int(task.name)] = (stat[0], _seconds(stat[1]))
    return found


def tree_seconds(root: int) -> float:
    """User plus system CPU seconds of `root` and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is not None:
            total += _seconds(fields)
        todo += children.get(pid, [])
    return total


def own_seconds() -> float:
    """CPU seconds of this process (not its children)."""
    times = os.times()
    return times.user + times.system


def own_kernel_seconds() -> float:
    """The part of own_seconds() spent in the kernel (system calls, page faults)."""
    return os.times().system


def snapshot(parts: Mapping[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of each named part (a pid; None: this process)."""
    return {
        name: own_seconds() if pid is None else tree_seconds(pid) for name, pid in parts.items()
    }


def per_request_us(
    before: Mapping[str, float], after: Mapping[str, float], requests: int
) -> dict[str, float]:
    """Microseconds of CPU per request of each part between two snapshots."""
    if requests <= 0:
        return {name: 0.0 for name in before}
    return {name: (after[name] - before[name]) / requests * 1e6 for name in before}
