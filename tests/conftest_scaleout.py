"""Real PostgreSQL and Milvus servers for the scale-out tests (a pytest plugin: `pytest_plugins` in those modules).

Both are session-scoped (Milvus takes ~12 s to start); each test gets its own database, and with it its own
Milvus collection (named after the database). They are skipped only when the binaries are really missing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from mmsearch.testing.servers import milvus_server, pg_bin_dir, postgres_server

_databases = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    if pg_bin_dir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def milvus_uri() -> Iterator[str]:
    pytest.importorskip("milvus", reason="the `milvus` package (Milvus standalone server) is not installed")
    with milvus_server() as uri:
        yield uri


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import psycopg

    name = f"mm_{next(_databases)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_server.rsplit("/", 1)[0] + f"/{name}"
