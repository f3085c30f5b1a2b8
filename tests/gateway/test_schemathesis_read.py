"""schemathesis fuzzes the read side's operations of ``/openapi.json`` against a live gateway
full of responses: no 5xx, every status and body as the document says, for a server key, a read
key scoped to one channel and a person's session."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from voxloop_gateway.reading import params

from .readers import Reading

READ_PATHS = {
    "/v1/responses",
    "/v1/responses/{ref}",
    "/v1/respondents/{respondent}/responses",
    "/v1/exports/responses.csv",
    "/v1/exports/responses.ndjson",
    "/v1/stats",
}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.mark.parametrize("who", ["server-key", "read-key", "person"])
def test_the_read_operations_keep_to_their_schema(sqlite_reading: Reading, who: str) -> None:
    url = sqlite_reading.gateway.url
    document = httpx.get(f"{url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    headers = {
        "server-key": {"Authorization": f"Bearer {sqlite_reading.server}"},
        "read-key": {"Authorization": f"Bearer {sqlite_reading.app_key}"},
        "person": {"Cookie": f"voxloop_session={sqlite_reading.app_person}"},
    }[who]
    operations = [
        result.ok() for result in schema.get_all_operations() if result.ok().path in READ_PATHS
    ]
    assert {operation.path for operation in operations} == READ_PATHS

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)

        fuzz()


def test_the_document_names_every_parameter_the_reads_take(sqlite_reading: Reading) -> None:
    paths = httpx.get(f"{sqlite_reading.gateway.url}/openapi.json").json()["paths"]

    def names(path: str) -> set[str]:
        operation = paths[path]
        found = [*operation.get("parameters", []), *operation["get"].get("parameters", [])]
        return {p["name"] for p in found if p["in"] == "query"}

    filters = set(params.FILTER_PARAMS)
    paged = filters | set(params.PAGE_PARAMS)
    assert names("/v1/responses") == paged
    assert names("/v1/respondents/{respondent}/responses") == paged
    assert names("/v1/exports/responses.csv") == filters | {"bom"}
    assert names("/v1/exports/responses.ndjson") == filters
    assert names("/v1/responses/{ref}") == {"project"}
    assert "meta.KEY=VALUE" in paths["/v1/responses"]["get"]["description"]
    for path in READ_PATHS:
        assert {"200", "400", "401", "403", "404", "429", "503"} <= set(
            paths[path]["get"]["responses"]
        )
