"""The integrations benchmark: a tiny run of the section end to end, and its webhook receiver.

The run is ``python -m loadtests.bench --section integrations`` as a process of its own, one
round of one second per setup and a short wait for the workers: it proves the machinery (the
gateway under wrk with and without the rules and endpoints, the receiver, the reading of what
the workers made), not the figures, which a run this short can't give.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from loadtests.integrations_bench import ENDPOINTS, RULES, Receiver

ROOT = Path(__file__).resolve().parents[2]


def _number(pattern: str, output: str) -> int:
    found = re.search(pattern, output)
    assert found is not None, f"no match for {pattern!r} in:\n{output}"
    return int(found.group(1).replace(",", ""))


def test_one_short_round_prints_both_rates_the_ratio_and_what_the_workers_made() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--section", "integrations"]
        + ["--integrations-seconds", "1", "--integrations-rounds", "1", "--catchup-seconds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    assert _number(r"\(a\) no rules, no endpoints +([\d,]+) events/s", output) > 0
    assert _number(r"\(b\) 5 rules, 2 endpoints +([\d,]+) events/s", output) > 0
    assert re.search(r"b / a = \d+\.\d\d +\[>= 0\.85 \(within 15%\)\] (holds|MISSED)", output)
    for path, events in ENDPOINTS.items():
        assert re.search(f"{re.escape(path)} +{re.escape(', '.join(events))}\n", output)
    for rule in RULES:
        assert repr(rule["name"]) in output
    # The workers of (b) read the load and acted on it: items of the rules, a message per event
    # read (response.created), and a delivery pending or made for each endpoint's types.
    read = _number(r"at the end: ([\d,]+) of [\d,]+ events read", output)
    assert read > 0
    assert _number(r"events read, ([\d,]+) items", output) > 0
    assert _number(r"response\.created ([\d,]+)", output) == read
    delivered = _number(r"deliveries: ([\d,]+) delivered", output)
    pending = _number(r"delivered, ([\d,]+) pending", output)
    assert delivered + pending > read
    assert "the receiver got:" in output


async def test_the_receiver_counts_by_path_type_and_distinct_id() -> None:
    transport = httpx.ASGITransport(app=Receiver())
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        for path, message, kind in [
            ("/everything", "msg_1", "response.created"),
            ("/everything", "msg_1", "response.created"),  # a repeat: same webhook-id
            ("/everything", "msg_2", "followup.created"),
            ("/followups", "msg_2", "followup.created"),
        ]:
            answer = await client.post(
                path, json={"type": kind, "data": {}}, headers={"webhook-id": message}
            )
            assert answer.status_code == 200
        counts = (await client.get("/counts")).json()
    assert counts["by_path"] == {"/everything": 3, "/followups": 1}
    assert counts["by_type"] == {
        "/everything response.created": 2,
        "/everything followup.created": 1,
        "/followups followup.created": 1,
    }
    assert counts["ids"] == 3
