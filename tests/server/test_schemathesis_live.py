"""schemathesis against a live ``hub serve``, from the hub's own /v1/openapi.json.

Twice: unsigned (as a stranger: nearly everything must be a documented 401 problem) and
with every request signed by an enrolled node's fixed-seed INSECURE key (RFC 9421, the
same signer the node SDK uses), so the generated queries, bodies and path parameters
reach the handlers. Each generated request is checked for: no 5xx, a status the
document lists for the operation, a Content-Type it lists, headers it declares, and a
body that validates against its schema. Positive and negative data, a bounded number of
examples per operation, derandomised so a failure is reproducible.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.live import LiveHub, live_hub, signed_headers

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
NODE = "health.bsw-icb"
UNSIGNED = {"GET /v1/health", "GET /v1/openapi.json", "GET /metrics"}


class SignedAs(requests.auth.AuthBase):
    """Signs each prepared request exactly as sent: its method, raw path, raw query and
    body bytes (RFC 9421 with Content-Digest, RFC 9530), created now, a fresh nonce."""

    def __init__(self, node_id: str) -> None:
        self._node_id = node_id

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(prepared.url or "")
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        assert isinstance(body, bytes), type(body)
        prepared.headers.update(
            signed_headers(
                prepared.method or "GET", url.path, node=self._node_id, query=url.query, body=body
            )
        )
        return prepared


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    root: Path = tmp_path_factory.mktemp("schemathesis-hub")
    # A short long-poll: generated `wait` values must not hold a request for 30 s.
    with live_hub(root, inbox_wait_max_seconds=0.2, node_cache_seconds=5.0) as running:
        yield running


def _run(
    hub: LiveHub, auth: requests.auth.AuthBase | None
) -> tuple[list[str], dict[str, Counter[int]]]:
    """Every failure (with the reproducing call; empty when all pass), and the statuses
    each operation answered."""
    failures: list[str] = []
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    with requests.Session() as session:
        # The document as the live hub serves it (from_url would leave out the operation
        # that serves the document itself).
        served = session.get(f"{hub.url}/v1/openapi.json", timeout=10)
        assert served.status_code == 200
        schema = schemathesis.openapi.from_dict(served.json())
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode, examples in EXAMPLES.items():

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=examples,
                    deadline=None,
                    derandomize=True,
                    database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                def exercise(case: schemathesis.Case) -> None:
                    response = case.call(base_url=hub.url, session=session, auth=auth)
                    statuses[case.operation.label][response.status_code] += 1
                    case.validate_response(response, checks=CHECKS)

                try:
                    exercise()
                except Unsatisfiable:
                    # Nothing to make invalid (no parameters, no body): no negative case.
                    assert mode is GenerationMode.NEGATIVE, operation.label
                except Exception as failure:  # every operation is tried; all are reported
                    first = str(failure).strip().splitlines()[:12]
                    failures.append(f"{operation.label} [{mode}]: " + "\n    ".join(first))
    return failures, statuses


def test_unsigned_requests_get_only_documented_answers(hub: LiveHub) -> None:
    failures, statuses = _run(hub, auth=None)
    assert failures == [], "\n".join(failures)
    assert len(statuses) == 23, sorted(statuses)  # every operation was exercised
    for label, answered in statuses.items():
        if label not in UNSIGNED:
            # Never a success; 401, or a 400/404 for a path that could name nothing (a
            # malformed id or chunk index is refused before authentication, alike for all).
            assert 401 in answered, (label, answered)
            assert set(answered) <= {400, 401, 404}, (label, answered)
    assert "unhandled error" not in hub.log()


def test_signed_requests_get_only_documented_answers(hub: LiveHub) -> None:
    failures, statuses = _run(hub, auth=SignedAs(NODE))
    assert failures == [], "\n".join(failures)
    # The signatures were accepted: every signed operation answered something other than
    # 401 (a broken signer would pass every check with nothing but 401s).
    for label, answered in statuses.items():
        assert set(answered) - {401}, (label, answered)
    assert "unhandled error" not in hub.log()
