"""Real PostgreSQL and Redis servers for tests, started from Debian's packages on loopback.

Each server lives in its own temporary folder on a free port of 127.0.0.1 and is stopped
and removed when its `with` block ends, however it ends, so tests never share state with
each other or with a system-wide service. `scripts/install-services.sh` installs the
binaries; where they are missing outside CI, the tests that need them are skipped.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

POSTGRES_ROOT = Path("/usr/lib/postgresql")
DATABASE = "faqbot"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# A port that another process takes between our probe and the server's bind is retried.
PORT_ATTEMPTS = 3


def server_unavailable(reason: str) -> None:
    """Skip the test, but fail it under CI, where a missing server is a set-up bug."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def postgres_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that can run a server, if any."""
    if not POSTGRES_ROOT.is_dir():
        return None
    versions: list[tuple[tuple[int, ...], Path]] = []
    for child in POSTGRES_ROOT.iterdir():
        bin_dir = child / "bin"
        if not re.fullmatch(r"\d+(\.\d+)*", child.name):
            continue
        if (bin_dir / "initdb").is_file() and (
            (bin_dir / "postgres").is_file() or (bin_dir / "pg_ctl").is_file()
        ):
            versions.append((tuple(int(part) for part in child.name.split(".")), bin_dir))
    return max(versions)[1] if versions else None


def _free_port() -> int:
    """A port nothing listens on right now (the kernel's choice, so parallel runs differ)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _clean_env() -> dict[str, str]:
    """The environment without PG* settings, so a developer's PGHOST etc. can't interfere."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _stop(proc: subprocess.Popen[bytes], first: signal.Signals) -> None:
    """Stop a server and everything in its process group, escalating to SIGKILL."""
    if proc.poll() is None:
        try:
            proc.send_signal(first)
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
    # Children (PostgreSQL's backends) share the group: none may outlive the server.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _traversable_by_others(path: Path) -> bool:
    """Whether every folder up to `path` lets another user through (for the `postgres` user)."""
    return all(os.stat(folder).st_mode & 0o001 for folder in [path, *path.parents])


@contextmanager
def _temp_dir(prefix: str, owner: pwd.struct_passwd | None = None) -> Iterator[Path]:
    """A private temporary folder, optionally given to `owner`; always removed afterwards."""
    base = Path(tempfile.gettempdir())
    if owner is not None and not _traversable_by_others(base):
        base = Path("/tmp")  # A TMPDIR under /root is out of the postgres user's reach.
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _postgres_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: as root, Debian's `postgres` user (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        server_unavailable(
            "running as root and there is no `postgres` user to run PostgreSQL as "
            "(run: bash scripts/install-services.sh)"
        )
        raise  # pragma: no cover - server_unavailable always raises


def _as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """Popen arguments that drop root to `user` (and root's supplementary groups)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _run(args: Sequence[str | Path], user: pwd.struct_passwd | None, cwd: Path) -> None:
    """Run a set-up command, raising with its output when it fails."""
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        **_as_user(user),
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}".strip()
        )


def _wait_for_postgres(proc: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    """Until the server takes a connection: True; False if it died of a taken port."""
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            text = _log_tail(log)
            if "could not bind" in text or "Address already in use" in text:
                return False
            raise RuntimeError(f"postgres exited with {proc.returncode}:\n{text}")
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                connect_timeout=2, autocommit=True,
            ) as conn:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            return True
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"postgres did not accept connections within {START_TIMEOUT:.0f} s:\n"
                    + _log_tail(log)
                ) from None
            time.sleep(0.05)


@contextmanager
def running_postgres() -> Iterator[str]:
    """A fresh PostgreSQL server on 127.0.0.1; yields a SQLAlchemy URL to its `faqbot` database.

    Trust authentication, but only on loopback and its own socket folder; durability is off
    (fsync etc.) because the data is thrown away. The server is stopped and its folder
    removed when the block ends, also when the body raises.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        server_unavailable(
            f"no PostgreSQL server under {POSTGRES_ROOT} (run: bash scripts/install-services.sh)"
        )
        return  # pragma: no cover - server_unavailable always raises
    user = _postgres_user()
    with _temp_dir("faqbot-pg-", user) as root:
        data, sockets, log = root / "data", root / "sockets", root / "postgres.log"
        _run(
            [bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            user, root,
        )
        # Loopback only: no `host` line for any other address, and listen on 127.0.0.1.
        (data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        sockets.mkdir()
        if user is not None:
            os.chown(sockets, user.pw_uid, user.pw_gid)
        for _ in range(PORT_ATTEMPTS):
            port = _free_port()
            with open(log, "wb") as log_file:
                proc = subprocess.Popen(
                    [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                     "-c", "listen_addresses=127.0.0.1",
                     "-c", f"unix_socket_directories={sockets}",
                     "-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off", "-c", "max_connections=20",
                     "-c", "shared_buffers=16MB", "-c", "max_wal_senders=0",
                     "-c", "wal_level=minimal", "-c", "autovacuum=off"],
                    cwd=root, env=_clean_env(), stdin=subprocess.DEVNULL,
                    stdout=log_file, stderr=subprocess.STDOUT,
                    start_new_session=True, **_as_user(user),
                )
            try:
                if not _wait_for_postgres(proc, port, log):
                    continue  # The port was taken meanwhile: try another.
                yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"
                return
            finally:
                # SIGINT is PostgreSQL's "fast" shutdown: clients are cut off, no waiting.
                _stop(proc, signal.SIGINT)
        raise RuntimeError(f"postgres found no free port in {PORT_ATTEMPTS} tries")


def _redis_ping(port: int) -> bool:
    """Whether a Redis server answers PING on 127.0.0.1:port (plain RESP over a socket)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_redis() -> Iterator[str]:
    """A fresh Redis server on 127.0.0.1, nothing saved to disk; yields `redis://…/0`.

    Stopped (SIGTERM, then SIGKILL) and its folder removed when the block ends.
    """
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        server_unavailable("no redis-server (run: bash scripts/install-services.sh)")
        return  # pragma: no cover - server_unavailable always raises
    with _temp_dir("faqbot-redis-") as root:
        log = root / "redis.log"
        for _ in range(PORT_ATTEMPTS):
            port = _free_port()
            proc = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1",
                 "--protected-mode", "yes", "--save", "", "--appendonly", "no",
                 "--dir", str(root), "--logfile", str(log), "--daemonize", "no",
                 "--databases", "16"],
                cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while not _redis_ping(port):
                    if proc.poll() is not None:
                        text = _log_tail(log)
                        if "Address already in use" in text:
                            break
                        raise RuntimeError(f"redis-server exited with {proc.returncode}:\n{text}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"redis-server did not answer within {START_TIMEOUT:.0f} s:\n"
                            + _log_tail(log)
                        )
                    time.sleep(0.02)
                else:
                    yield f"redis://127.0.0.1:{port}/0"
                    return
            finally:
                _stop(proc, signal.SIGTERM)
        raise RuntimeError(f"redis-server found no free port in {PORT_ATTEMPTS} tries")
