"""A PostgreSQL cluster in a folder of ours, run from the machine's binaries.

`start_postgres` finds the server binaries (Debian's `postgresql` package,
installed with apt-get when missing), creates the cluster the first time
(initdb, trust authentication on loopback), starts `postgres` as our child on
127.0.0.1:<port> with its unix socket inside the folder, and creates the
`switchboard` database. A second start on the same folder reuses the cluster.

initdb and postgres refuse to run as root, so as root they run as an
unprivileged system user (`switchboard-pg`, created when missing) that owns
the folder; every folder above it must be traversable by that user.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from devstack.packages import apt_install
from devstack.processes import Child, StartError, ensure_port_free, read_pid, stop_stray

PG_USER = "switchboard-pg"
DATABASE = "switchboard"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes, and ".s.PGSQL.<port>" is added


@dataclass
class PostgresCluster:
    """A running cluster: its DSNs, and how to stop it."""

    port: int
    data_dir: Path
    log_file: Path
    child: Child
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        """The DSN of the `switchboard` database, as the superuser."""
        return self.dsn(DATABASE)

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def alive(self) -> bool:
        return self.child.alive()

    def stop(self, timeout: float = 30.0) -> None:
        self.child.stop(timeout)


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin with a server, or SWITCHBOARD_PG_BIN."""
    explicit = os.environ.get("SWITCHBOARD_PG_BIN")
    if explicit:
        return Path(explicit)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def ensure_binaries() -> Path:
    """The server's bin folder, installing Debian's `postgresql` package if need be."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        apt_install("postgresql")
        bin_dir = find_bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").is_file():
        raise StartError("postgres: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    return bin_dir


def server_user() -> str | None:
    """The user the server runs as: ours when not root, else the system user (created)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                PG_USER,
            ],
            check=True,
        )
    return PG_USER


def traversable_by(path: Path, user: str | None) -> bool:
    """True when `user` may reach `path` (execute permission on every folder above it)."""
    if user is None:
        return True
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for folder in path.resolve().parents:
        info = folder.stat()
        if info.st_uid == entry.pw_uid:
            needed = stat.S_IXUSR
        elif info.st_gid in groups:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not info.st_mode & needed:
            return False
    return True


def usable_dir(preferred: Path) -> Path:
    """`preferred` if the server's user can reach it, else a folder under /var/tmp for it."""
    user = server_user()
    preferred.parent.mkdir(parents=True, exist_ok=True)
    if traversable_by(preferred, user):
        return preferred
    digest = hashlib.sha1(str(preferred.resolve()).encode()).hexdigest()[:10]
    fallback = Path("/var/tmp") / f"switchboard-{digest}" / preferred.name
    print(
        f"devstack: {preferred} is not reachable by {user}; using {fallback}",
        file=sys.stderr,
        flush=True,
    )
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.parent.chmod(0o755)
    return fallback


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    if path.stat().st_uid == entry.pw_uid:
        return
    for root, dirs, files in os.walk(path):
        for name in [
            root,
            *(os.path.join(root, d) for d in dirs),
            *(os.path.join(root, f) for f in files),
        ]:
            os.lchown(name, entry.pw_uid, entry.pw_gid)


def _run_as(user: str | None, argv: list[str], cwd: Path) -> None:
    result = subprocess.run(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        user=user,
        group=user,
        extra_groups=[] if user else None,
    )
    if result.returncode != 0:
        raise StartError(f"postgres: {Path(argv[0]).name} failed:\n{result.stdout[-3000:]}")


def _socket_dir(base: Path, user: str | None) -> Path:
    sockets = base / "sockets"
    if len(str(sockets)) > _SOCKET_PATH_MAX:
        sockets = Path(tempfile.mkdtemp(prefix="sbpg-"))
    sockets.mkdir(exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(sockets, entry.pw_uid, entry.pw_gid)
    return sockets


def _ready(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def create_database(admin_dsn: str, name: str) -> None:
    """CREATE DATABASE `name` unless it exists."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def start_postgres(
    base_dir: Path,
    port: int,
    log_file: Path | None = None,
    durable: bool = True,
    timeout: float = 60.0,
) -> PostgresCluster:
    """Start the cluster kept in `base_dir` (created on first use) on 127.0.0.1:port.

    `durable=False` turns fsync off: for throw-away test clusters only.
    """
    bin_dir = ensure_binaries()
    user = server_user()
    base = base_dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    if not traversable_by(base, user):
        raise StartError(
            f"postgres: user {user} cannot reach {base}; give every folder above it o+x "
            "or use postgres.usable_dir()"
        )
    if user is not None:
        _chown_tree(base, user)
    data = base / "data"
    log_file = (log_file or base / "postgres.log").resolve()
    if not (data / "PG_VERSION").is_file():
        shutil.rmtree(data, ignore_errors=True)
        _run_as(
            user,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            cwd=base,
        )
    stop_stray(
        read_pid(data / "postmaster.pid"),
        ["postgres", str(data)],
        signal.SIGINT,
        "PostgreSQL server",
    )
    ensure_port_free("127.0.0.1", port, "postgres")
    sockets = _socket_dir(base, user)
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(sockets),
        "max_connections": "200",
        "logging_collector": "off",
    }
    if not durable:
        settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
    argv = [str(bin_dir / "postgres"), "-D", str(data)]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    child = Child("postgres", argv, log_file, cwd=base, user=user, stop_signal=signal.SIGINT)
    child.start()
    cluster = PostgresCluster(port, data, log_file, child)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(cluster.dsn("postgres")):
            child.check_alive()
            if time.monotonic() > deadline:
                raise child.fail(f"not accepting connections on port {port} within {timeout:.0f}s")
            time.sleep(0.1)
        create_database(cluster.dsn("postgres"), DATABASE)
    except BaseException:
        cluster.stop()
        raise
    return cluster
