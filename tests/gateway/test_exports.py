"""``GET /v1/exports/responses.csv`` and ``.ndjson``, and ``voxloop-gateway export``: the rows of
``/v1/responses``, row for row, as RFC 4180 CSV that the csv module reads back (cells a
spreadsheet would run neutralised, an optional BOM) and as NDJSON; streamed in pages, so memory
stays flat; the CLI writes the same bytes for the same filters."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxloop import new_id
from voxloop_gateway.control.db import REGISTRY_FILE
from voxloop_gateway.reading.formats import neutralised

from .conftest import BinaryCommand, Gateway, make_project, start_gateway
from .readers import Reading

COLUMNS = [
    "ref",
    "id",
    "channel",
    "form",
    "metric",
    "score",
    "comment",
    "locale",
    "tags",
    "meta",
    "ts",
    "received",
    "counts",
    "held",
    "revised",
    "respondent",
]
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def export(reading: Reading, kind: str, **params: Any) -> httpx.Response:
    with reading.client() as client:
        return client.get(f"/v1/exports/responses.{kind}", params=params)


def cell(value: Any) -> str:
    """What a CSV cell holds for an item's value, written here from the contract's words."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    return "'" + text if text[:1] in FORMULA and text else text


def rows_of(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


FILTERS: list[dict[str, Any]] = [
    {},
    {"channel": "app", "has_comment": "true"},
    {"metric": "nps", "score_min": 9},
    {"q": "راحت"},
    {"held": "quarantined"},
]


@pytest.mark.parametrize("params", FILTERS, ids=["all", "app-comments", "promoters", "fa", "held"])
def test_the_csv_export_is_the_api_pages_row_for_row(
    reading: Reading, params: dict[str, Any]
) -> None:
    items = reading.walk(limit=11, **params)
    assert items
    answer = export(reading, "csv", **params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="shop-responses-')
    assert disposition.endswith('.csv"')
    assert not answer.content.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in answer.content and answer.content.endswith(b"\r\n")
    header, *rows = rows_of(answer.content)
    assert header == COLUMNS
    assert rows == [[cell(item[column]) for column in COLUMNS] for item in items]


def test_the_ndjson_export_is_the_api_pages_line_for_line(reading: Reading) -> None:
    params = {"channel": ["web", "email"], "tag": "vip"}
    items = reading.walk(**params)
    answer = export(reading, "ndjson", **params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-ndjson"
    assert answer.headers["content-disposition"].endswith('.ndjson"')
    lines = answer.content.decode().split("\n")
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == items


def test_cells_a_spreadsheet_would_run_are_neutralised(sqlite_reading: Reading) -> None:
    answer = export(sqlite_reading, "csv", has_comment="true")
    header, *rows = rows_of(answer.content)
    comments = {row[header.index("comment")] for row in rows}
    for dangerous in (
        '=HYPERLINK("http://evil.example","click")',
        "+1 would buy again",
        "-2 stars, sorry",
        "@SUM(A1:A9)",
        "\tindented by a tab",
    ):
        assert dangerous not in comments
        assert "'" + dangerous in comments
    assert 'Quoted "word", a comma\nand a second line' in comments  # quoted, not cut
    for row in rows:
        assert not any(value.startswith(FORMULA) for value in row), row
    for text in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert neutralised(text) == "'" + text
    for text in ("1", "a=b", "", "'=x", " =x"):
        assert neutralised(text) == text


def test_the_bom_is_there_only_when_asked(sqlite_reading: Reading) -> None:
    plain = export(sqlite_reading, "csv", channel="kiosk")
    bom = export(sqlite_reading, "csv", channel="kiosk", bom="true")
    assert bom.content == b"\xef\xbb\xbf" + plain.content
    assert export(sqlite_reading, "csv", bom="false").content.startswith(b"ref,id,")
    assert rows_of(bom.content[3:]) == rows_of(plain.content)
    with_bom = list(csv.reader(io.StringIO(bom.content.decode("utf-8-sig"), newline="")))
    assert with_bom[0] == COLUMNS


@pytest.mark.parametrize(
    ("kind", "params", "said"),
    [
        ("csv", {"cursor": "abc"}, "unknown query parameter 'cursor'"),
        ("csv", {"limit": "5"}, "unknown query parameter 'limit'"),
        ("csv", {"bom": "yes"}, "bom must be true or false"),
        ("ndjson", {"bom": "true"}, "unknown query parameter 'bom'"),
        ("csv", {"score_min": "11"}, "score_min must be an integer 0..10"),
        ("ndjson", {"to": "tomorrow"}, "to must be an RFC 3339 time"),
    ],
    ids=["cursor", "limit", "bad-bom", "bom-in-ndjson", "score", "to"],
)
def test_bad_export_input_is_a_400_naming_the_parameter(
    sqlite_reading: Reading, kind: str, params: dict[str, str], said: str
) -> None:
    answer = export(sqlite_reading, kind, **params)
    assert answer.status_code == 400
    assert said in answer.json()["error"]


def export_args(data_dir: Path, *args: str, store: str = "sqlite") -> list[str]:
    """The arguments of ``voxloop-gateway ... export shop ARGS...`` on ``data_dir``'s stores."""
    stores = ["--store", store] if store != "sqlite" else []
    return ["--data-dir", str(data_dir), *stores, "export", "shop", *args]


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``export`` as a process of its own; ``command_bytes`` runs it in this one."""
    return subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", *export_args(data_dir, *args)],
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("kind", "flags", "params"),
    [
        ("csv", (), {}),
        ("ndjson", (), {}),
        (
            "csv",
            ("--channel", "app", "--channel", "web", "--has-comment", "true", "--tag", "vip"),
            {"channel": ["app", "web"], "has_comment": "true", "tag": "vip"},
        ),
        (
            "ndjson",
            ("--metric", "nps", "--metric", "ces", "--score-min", "2", "--meta", "plan=pro"),
            {"metric": ["nps", "ces"], "score_min": "2", "meta.plan": "pro"},
        ),
        ("csv", ("--search", "راحت", "--locale", "fa"), {"q": "راحت", "locale": "fa"}),
    ],
    ids=["csv", "ndjson", "channels-comments-tag", "metrics-score-meta", "search-locale"],
)
def test_the_cli_writes_the_same_rows_as_the_api(
    reading: Reading,
    command_bytes: BinaryCommand,
    kind: str,
    flags: tuple[str, ...],
    params: dict[str, Any],
) -> None:
    # An operator's tool: it reads the stores directly, with no access group applied.
    api = export(reading, kind, **params)
    assert api.status_code == 200 and api.content.count(b"\n") > 1, api.text
    data_dir = reading.gateway.data_dir
    done = command_bytes(*export_args(data_dir, "--format", kind, *flags, store=reading.backend))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == api.content
    assert done.stderr == b""  # no progress bar off a terminal


def test_the_cli_writes_a_private_file_whole_with_a_bom(
    sqlite_reading: Reading, tmp_path: Path
) -> None:
    target = tmp_path / "out.csv"
    done = cli(sqlite_reading.gateway.data_dir, "--format", "csv", "--bom", "-o", str(target))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""
    assert target.read_bytes() == export(sqlite_reading, "csv", bom="true").content
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not (tmp_path / "out.csv.part").exists()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--format", "csv", "--score-min", "12"), "--score-min must be an integer 0..10"),
        (("--format", "csv", "--meta", "plan"), "--meta 'plan' must be KEY=VALUE"),
        (("--format", "csv", "--from", "soon"), "--from must be an RFC 3339 time"),
        (("--format", "csv", "--channel", "fax"), "--channel 'fax' is not one of"),
        (
            (
                "--format",
                "xml",
            ),
            "invalid choice: 'xml'",
        ),
        (("--format", "csv", "--search", "x" * 201), "--search must be 1-200 characters"),
    ],
    ids=["score", "meta", "from", "channel", "format", "search"],
)
def test_the_cli_refuses_a_bad_filter_in_one_line(
    sqlite_reading: Reading,
    command_bytes: BinaryCommand,
    flags: tuple[str, ...],
    said: str,
    tmp_path: Path,
) -> None:
    target = tmp_path / "kept.csv"
    target.write_text("before")
    done = command_bytes(*export_args(sqlite_reading.gateway.data_dir, *flags, "-o", str(target)))
    assert done.returncode == 2
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and said in lines[0], lines
    assert target.read_text() == "before"  # a failed export leaves the file as it was
    assert not (tmp_path / "kept.csv.part").exists()


def test_an_export_is_streamed_in_pages_with_flat_memory(tmp_path: Path) -> None:
    """An export of 20,000 rows takes no more memory than one of 10,000: the rows leave the
    gateway a page at a time (the process's peak of allocated memory during each export). Both
    span many pages (``EXPORT_PAGE``), so each reaches what a page costs, and an export whose
    memory grew with its rows would be near twice as high at 20,000.

    The rules' feed reads the same events in this process: the scores make no follow-up item,
    and each export waits for the feed to have read everything, so only the export is measured.
    The workers' other jobs still run every half second: each size is exported twice and the
    lower peak kept (an export that held its rows would be high both times).
    """
    site, server = make_project(tmp_path)
    gateway = start_gateway(tmp_path, site, server, key_rate=1e6, key_burst=1e6)
    ts = int(time.time() * 1000) - 3_600_000
    measured = []
    try:
        for start in range(0, 20_000, 1_000):
            batch = [
                {
                    "id": new_id(),
                    "channel": ("web", "app")[i % 2],
                    "form": "checkout",
                    "metric": "nps",
                    "score": 7 + i % 4,
                    "comment": "a comment of some length, to weigh on memory " * 4,
                    "ts": ts - start - i,
                }
                for i in range(1_000)
            ]
            assert gateway.post(batch).status_code == 202
            if start + 1_000 in (10_000, 20_000):
                _feed_read(gateway, (start + 1_000) // 2)
                # Twice, keeping the lower peak: what a background job allocates when its round
                # falls in one export's window is not the export's.
                runs = [_streamed(gateway) for _ in range(2)]
                assert runs[0][:2] == runs[1][:2]
                measured.append(min(runs, key=lambda run: run[2]))
    finally:
        gateway.stop()
    (small, small_lines, small_peak), (large, large_lines, large_peak) = measured
    assert (small_lines, large_lines) == (10_001, 20_001)  # every row came, and the header
    assert large > 1.9 * small
    assert large_peak < 1.5 * small_peak, (small_peak, large_peak)


def _feed_read(gateway: Gateway, per_channel: int) -> None:
    """Wait (at most 60 s) until the rules' feed has read ``per_channel`` events of each channel."""
    deadline = time.monotonic() + 60
    with contextlib.closing(sqlite3.connect(gateway.data_dir / REGISTRY_FILE)) as db:
        while True:
            read = dict(db.execute("SELECT channel, event_seq FROM feed_cursors").fetchall())
            if read.get("web") == read.get("app") == per_channel:
                return
            assert time.monotonic() < deadline, read
            time.sleep(0.1)


def _streamed(gateway: Gateway) -> tuple[int, int, int]:
    """Bytes and lines of a whole CSV export, and the peak of memory allocated meanwhile."""
    size = lines = 0
    tracemalloc.start()
    try:
        with gateway.client(gateway.server_key) as client:
            with client.stream("GET", "/v1/exports/responses.csv") as answer:
                assert answer.status_code == 200
                for chunk in answer.iter_raw():
                    size += len(chunk)
                    lines += chunk.count(b"\n")  # no comment here holds one
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return size, lines, peak
