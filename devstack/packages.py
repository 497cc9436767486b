"""Installing what the machine lacks (PostgreSQL, nginx, promtool) from Debian's packages.

Only used when a binary is missing: `make run` and the tests must work on a
fresh Debian machine where the session runs as root and nothing but Python,
Java and Maven is there yet. `ensure_binary` finds a tool, installing its
package first when it is missing; `apt_install` installs a package.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import cache_dir

_updated = False
# Where the binaries of Debian's packages land, whatever PATH says.
SYSTEM_PATH = "/usr/bin:/usr/sbin:/usr/local/bin:/usr/local/sbin"


class InstallError(RuntimeError):
    """A package could not be installed; the message says what to do by hand."""


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing): one installer at a time
    across processes, such as the two test processes of `make test`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apt_install(*alternatives: str) -> str:
    """Install the first of `alternatives` that apt-get can install; return its name.

    One process at a time (a lock under the cache folder): apt-get refuses to
    run beside another, and the test processes may all miss the same package.
    """
    with locked(cache_dir() / "apt.lock"):
        return _apt_install(alternatives)


def _apt_install(alternatives: tuple[str, ...]) -> str:
    if shutil.which("apt-get") is None:
        raise InstallError(f"no apt-get here: install {alternatives[0]} yourself")
    if os.geteuid() != 0:
        raise InstallError(f"run as root or install {alternatives[0]} yourself (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    global _updated
    if not _updated:
        print("devstack: apt-get update", file=sys.stderr, flush=True)
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, stdout=subprocess.DEVNULL)
        _updated = True
    errors = []
    for package in alternatives:
        print(f"devstack: apt-get install {package}", file=sys.stderr, flush=True)
        result = subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if result.returncode == 0:
            return package
        errors.append(f"{package}: {result.stderr.strip()[-500:]}")
    raise InstallError("apt-get install failed:\n" + "\n".join(errors))


def ensure_binary(binary: str, *packages: str) -> str:
    """`binary`'s path, installed first from the first of `packages` apt-get can install."""
    found = shutil.which(binary) or shutil.which(binary, path=SYSTEM_PATH)
    if found is None:
        installed = apt_install(*packages)
        found = shutil.which(binary, path=SYSTEM_PATH)
        if found is None:
            raise InstallError(f"{binary}: apt-get installed {installed} but there is no {binary}")
    return found
