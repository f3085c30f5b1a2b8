"""The service endpoints, the OpenAPI contract (fuzzed with schemathesis) and the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from .conftest import Command, Gateway, make_project, start_gateway


def test_healthz_readyz_and_metrics(gateway: Gateway) -> None:
    with gateway.client() as client:
        assert client.get("/healthz").json()["status"] == "ok"
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["stores"] == {"app": True, "email": True, "kiosk": True, "web": True}
    event = {"channel": "web", "form": "f", "metric": "thumbs", "score": 1}
    gateway.post([event, {**event, "score": 3}])
    with gateway.client() as client:
        text = client.get("/metrics").text
    assert 'voxloop_events_total{channel="web",outcome="accepted"} 1.0' in text
    assert 'voxloop_events_total{channel="web",outcome="rejected"} 1.0' in text
    assert "voxloop_commit_seconds_bucket" in text
    assert "voxloop_queue_depth 0.0" in text
    assert 'voxloop_requests_total{route="events",status="202"} 1.0' in text


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir = tmp_path_factory.mktemp("fuzzed")
    site, server = make_project(data_dir)
    gw = start_gateway(data_dir, site, server, key_rate=1e6, key_burst=1e6)
    yield gw
    gw.stop()


# Every check on what the gateway answers. Not "positive data accepted": the schema can't say
# that a score's range depends on its metric, so schema-valid events may rightly be rejected.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def test_no_5xx_and_every_answer_fits_the_schema(running: Gateway) -> None:
    """schemathesis fuzzes every operation of /openapi.json, a bounded number of cases each."""
    document = httpx.get(f"{running.url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    auth = {"Authorization": f"Bearer {running.server_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 14

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=running.url, headers=auth, checks=CHECKS)

        fuzz()


def test_cli_init_keys_and_projects(tmp_path: Path, command: Command) -> None:
    """``init`` as a process of its own, the commands after it in this one (``command``)."""

    def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = command("--data-dir", str(tmp_path), *args)
        assert done.returncode == 0 or not check, done.stderr
        return done

    init = subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(tmp_path), "init"]
        + ["--project", "acme", "--origin", "https://acme.example"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site key   pk_" in init and "server key sk_" in init
    assert cli("projects", "create", "beta", "--channel", "kiosk").stdout.startswith("project beta")
    assert [line.split()[0] for line in cli("projects", "list").stdout.splitlines()] == [
        "acme",
        "beta",
    ]
    key = cli("keys", "create", "beta", "--kind", "site", "--channel", "kiosk").stdout.strip()
    assert key.startswith("pk_")
    listed = cli("keys", "list", "beta").stdout
    assert key[:11] in listed and key not in listed  # the key itself is never shown again
    assert "revoked" in cli("keys", "revoke", key[:11]).stdout
    again = cli("keys", "revoke", key[:11], check=False)
    assert again.returncode == 2 and "already revoked" in again.stderr
    bad = cli("projects", "create", "Bad Name", check=False)
    assert bad.returncode == 2 and "must be 1-64 characters" in bad.stderr
    raw = (tmp_path / "registry.sqlite3").read_bytes()
    assert key.encode() not in raw  # stored hashed
