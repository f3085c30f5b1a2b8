"""The privacy benchmark: a tiny run of the section end to end.

The run is ``python -m loadtests.bench --section privacy`` as a process of its own, a few
batches, one round and, with wrk, one second per setup: it proves the machinery (the pipeline
with and without scrubbing, the batches given personal data, the gateway under wrk with its
project scrubbing or not), not the figures, which a run this short can't give.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _rate(name: str, output: str) -> float:
    found = re.search(rf"^  {re.escape(name)} +([\d,]+) events/s$", output, re.M)
    assert found is not None, f"no rate of {name!r} in:\n{output}"
    return float(found.group(1).replace(",", ""))


def test_one_short_round_prints_both_rates_the_ratios_and_the_hits() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--section", "privacy"]
        + ["--batches", "20", "--rounds", "1", "--seconds", "1", "--http-rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    for name in ("plain", "scrubbed", "plain, some PII", "scrubbed, some PII"):
        assert _rate(name, output) > 0
    assert re.search(r"scrubbed / plain +=  ?\d\.\d\d", output)
    # The core's comments hold no personal data; the ones given some lose all of it.
    assert "replaced by a run scrubbed:            nothing" in output
    hits = re.search(
        r"scrubbed, some PII: +card (\d+), email (\d+), iban (\d+), phone (\d+)", output
    )
    assert hits is not None and all(int(n) > 0 for n in hits.groups()), output
    if shutil.which("wrk") and shutil.which("taskset"):
        assert _rate("http", output) > 0 and _rate("http, scrubbed", output) > 0
        assert re.search(r"ingest: scrubbed / plain += \d\.\d\d +\(goal >= 0\.8\)", output)
