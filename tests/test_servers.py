"""The server helpers start real PostgreSQL and Redis servers, and always stop them.

These guard the helpers the store tests rely on: a fixture that silently talked to a
system-wide server, or left one running after a failing test, would poison later runs.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import servers
import sqlalchemy
from servers import running_postgres, running_redis, server_unavailable


class _Boom(Exception):
    """Raised inside a `with` block to prove the server is stopped on errors too."""


@pytest.fixture
def made_dirs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The temporary folders the helpers create, to check that they are removed."""
    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: object, **kwargs: object) -> str:
        folder = real_mkdtemp(*args, **kwargs)  # type: ignore[call-overload]
        made.append(Path(folder))
        return str(folder)

    monkeypatch.setattr(servers.tempfile, "mkdtemp", recording_mkdtemp)
    return made


def _redis_ping(url: str) -> bytes:
    """PING through the `redis` package when installed, else in plain RESP over a socket."""
    try:
        import redis
    except ImportError:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64)
    client = redis.Redis.from_url(url)
    try:
        return b"+PONG\r\n" if client.ping() else b""
    finally:
        client.close()


def test_postgres_answers_and_is_stopped_even_when_the_body_raises(
    made_dirs: list[Path],
) -> None:
    with pytest.raises(_Boom):
        with running_postgres() as url:
            port = urlsplit(url).port
            assert port is not None
            engine = sqlalchemy.create_engine(url)
            try:
                with engine.connect() as conn:
                    version = conn.execute(sqlalchemy.text("select version()")).scalar_one()
                    database = conn.execute(
                        sqlalchemy.text("select current_database()")
                    ).scalar_one()
            finally:
                engine.dispose()
            assert version.startswith("PostgreSQL ")
            assert database == "faqbot"
            raise _Boom
    assert not servers._accepts(port)
    assert made_dirs and not any(folder.exists() for folder in made_dirs)


def test_redis_answers_and_is_stopped_even_when_the_body_raises(made_dirs: list[Path]) -> None:
    with pytest.raises(_Boom):
        with running_redis() as url:
            port = urlsplit(url).port
            assert port is not None and url == f"redis://127.0.0.1:{port}/0"
            assert _redis_ping(url).startswith(b"+PONG")
            raise _Boom
    assert not servers._accepts(port)
    assert made_dirs and not any(folder.exists() for folder in made_dirs)


def test_a_missing_server_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no server"):
        server_unavailable("no server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no server"):
        server_unavailable("no server")


def test_a_missing_postgres_fails_the_fixture_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(servers, "POSTGRES_ROOT", Path("/nonexistent/postgresql"))
    with pytest.raises(pytest.fail.Exception, match="no PostgreSQL server"):
        with running_postgres():
            pass  # pragma: no cover - never entered
