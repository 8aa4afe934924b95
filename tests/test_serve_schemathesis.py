"""Property-based tests of the whole HTTP API (issue 23, item 8): Schemathesis generates requests for every route
and parameter of `/openapi.json` and sends them to a real `mmsearch serve` process. Every answer must be a
non-5xx response whose body conforms to the documented schema of its status.

Bounded for CI: MAX_EXAMPLES generated requests per route (5 routes), a few minutes at most on a loaded 2-core
machine. Run more locally with `MMSEARCH_SCHEMATHESIS_EXAMPLES=500 pytest tests/test_serve_schemathesis.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402
from serve_index import make_small_index  # noqa: E402

from mmsearch.testing.server import free_port  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("MMSEARCH_SCHEMATHESIS_EXAMPLES", "40"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mmsearch serve` as a user starts it, on the small test index; yields its base URL once it serves."""
    small = make_small_index(tmp_path_factory.mktemp("schemathesis"))
    port = free_port()
    cmd = [sys.executable, "-m", "mmsearch", "serve", "--index", str(small.index), "--port", str(port)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("serving"), (line, server.stderr.read() if server.stderr else "")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
        # A 500 answers JSON, but its traceback goes to the server's log: none may be there.
        assert "Traceback" not in err and "internal error" not in err, err[-3000:]


@pytest.fixture(scope="module")
def api_schema(served: str) -> Any:
    return schemathesis.openapi.from_url(f"{served}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests on every run: a failure in CI is a failure here
    suppress_health_check=list(HealthCheck),
)
def test_every_route_answers_without_server_error_and_as_documented(case: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance], timeout=60)
