"""How the read benchmark reads: timed requests, checked answers, a served gateway and its memory.

The pieces of ``read_bench`` that speak HTTP or watch a process, whatever is being read:
:func:`timed` (sequential requests, each answer received whole and required to be a 200),
:class:`Gateway` (``voxloop-gateway serve`` as a process of its own), :class:`RssSampler` (a
process's resident memory from /proc), and :func:`log_in` (a person's way into the dashboard,
through its forms, as a browser goes).
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final, TextIO

import httpx

from .http_bench import free_port

WARMUPS: Final = 3
#: Longest a measured read may take, all its requests together; it is cut short past it.
CASE_SECONDS: Final = 60.0
#: The CPU the apps run on (taskset) and the one this process reads from.
APP_CPU: Final = 0
CLIENT_CPU: Final = 1
_STATUS_FIELDS: Final = ("VmRSS", "VmHWM")


class Disagreement(Exception):
    """An answer is not what was stored, or the two apps answered one question apart."""


def percentile(samples: list[float], share: float) -> float:
    """The nearest-rank percentile: the least sample with ``share`` of them at or below it."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Timing:
    """The latencies of one read in ms, each from sending the request to its last byte."""

    label: str
    samples_ms: list[float]
    cut_short: bool = False

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 0.50)

    @property
    def p95(self) -> float:
        return percentile(self.samples_ms, 0.95)


def answer_ok(answer: httpx.Response) -> None:
    """Disagreement naming the request unless ``answer`` is a 200: an error is no result."""
    if answer.status_code != 200:
        raise Disagreement(
            f"{answer.request.method} {answer.request.url.path} answered"
            f" {answer.status_code}: {answer.text[:300]}"
        )


def timed(
    client: httpx.Client,
    label: str,
    path: str,
    params: dict[str, Any],
    requests: int,
    *,
    warmups: int = WARMUPS,
    seconds: float = CASE_SECONDS,
) -> tuple[Timing, httpx.Response]:
    """Time ``requests`` sequential GETs of ``path`` after ``warmups`` untimed ones.

    Every answer must be a 200. Once ``seconds`` have passed the timing stops (``cut_short``),
    with at least one timed request.

    Returns:
        The timing, and the last answer for the checks of agreement.

    Raises:
        Disagreement: an answer was not a 200.
    """
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    last: httpx.Response | None = None
    for n in range(warmups + requests):
        started = time.perf_counter()
        last = client.get(path, params=params)
        elapsed = (time.perf_counter() - started) * 1000
        answer_ok(last)
        if n >= warmups:
            samples.append(elapsed)
            if time.monotonic() > deadline and n + 1 < warmups + requests:
                return Timing(label, samples, cut_short=True), last
    if last is None:
        raise ValueError("timed needs at least one request")
    return Timing(label, samples), last


def ids(answer: httpx.Response) -> list[str]:
    """The event ids of a page of ``/v1/responses``, either app's, in order."""
    return [row["id"] for row in answer.json()["responses"]]


def must_equal(
    what: str, answered: object, expected: object, source: str, by: str = "the gateway"
) -> None:
    """Disagreement naming ``what`` unless ``by``'s answer equals what ``source`` says."""
    if answered != expected:
        raise Disagreement(
            f"{what}: {by} answered {str(answered)[:300]}, {source} says {str(expected)[:300]}"
        )


def status_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (resident at most) of process ``pid``, in kB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in _STATUS_FIELDS:
            found[name] = int(value.split()[0])
    return found


def cpu_seconds(pid: int) -> float:
    """The CPU time process ``pid`` has used, user and system, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """The highest ``VmRSS`` of process ``pid`` while in the ``with``, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid, self.every = pid, every
        self.samples = 0
        self.peak_kb = status_kb(pid)["VmRSS"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.peak_kb = max(self.peak_kb, status_kb(self.pid)["VmRSS"])
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class Gateway:
    """``voxloop-gateway serve`` on a free loopback port, pinned to ``APP_CPU``, its output in
    a log file."""

    def __init__(self, data_dir: Path, env: dict[str, str], log: Path) -> None:
        self.data_dir, self.env, self.log_path = data_dir, env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._log: TextIO | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the gateway is not running")
        return self.process.pid

    def cli(self, *args: str) -> str:
        """Run ``voxloop-gateway --data-dir D ARGS`` on its data dir; its stdout.

        Raises:
            RuntimeError: it failed, with what it said.
        """
        done = subprocess.run(
            [*self._command(), *args],
            env=self._environ(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"voxloop-gateway {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self, timeout: float = 60) -> None:
        """Serve, and wait until /readyz answers 200; RuntimeError with its log if it doesn't."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._log = self.log_path.open("w")
        serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        self.process = subprocess.Popen(
            ["taskset", "-c", str(APP_CPU), *self._command(), *serve],
            env=self._environ(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the gateway did not start:\n{self.log()}")

    def log(self) -> str:
        """The end of what it printed."""
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(self.data_dir)]

    def _environ(self) -> dict[str, str]:
        return {**os.environ, **self.env, "VOXLOOP_DRAIN_SECONDS": "0"}


class _Forms(HTMLParser):
    """The POST forms of a page: where each goes and the values its inputs hold."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and (found.get("method") or "").lower() == "post":
            self._inside = True
            self.forms.append((found.get("action") or "", {}))
        elif tag == "input" and self._inside and found.get("name"):
            self.forms[-1][1][found["name"] or ""] = found.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


class _Element(HTMLParser):
    """The attributes of the element of a page with a given ``id`` (their entities decoded)."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted = wanted
        self.attributes: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.attributes is None and ("id", self.wanted) in attrs:
            self.attributes = {name: value or "" for name, value in attrs}


def attribute(page: str, element: str, name: str) -> str:
    """The attribute ``name`` of the element ``#element`` of the HTML ``page``.

    Raises:
        Disagreement: the page has no such element or attribute.
    """
    found = _Element(element)
    found.feed(page)
    if found.attributes is None or name not in found.attributes:
        raise Disagreement(f"the page has no #{element} with {name}")
    return found.attributes[name]


def submit(client: httpx.Client, page: str, values: dict[str, str]) -> httpx.Response:
    """Fill the form of ``page`` that posts back to it (a layout may hold others, like the
    logout button's) with ``values``, its hidden fields kept, and send it.

    Raises:
        Disagreement: the page has no such form, or an answer is not a 200 after redirects.
    """
    shown = client.get(page)
    answer_ok(shown)
    parsed = _Forms()
    parsed.feed(shown.text)
    for action, fields in parsed.forms:
        if httpx.URL(action).path == page:
            sent = client.post(action, data={**fields, **values})
            answer_ok(sent)
            return sent
    raise Disagreement(f"{page} has no form that posts to it")


def log_in(client: httpx.Client, email: str, one_time: str, password: str) -> None:
    """Log ``email`` in with a one-time password and set ``password`` as the first login asks.

    ``client`` follows redirects and keeps the session cookie for every later read.

    Raises:
        Disagreement: the login or the change of password did not take.
    """
    landed = submit(client, "/app/login", {"email": email, "password": one_time})
    if landed.url.path == "/app/password":
        changed = {"current": one_time, "new": password, "repeat": password}
        landed = submit(client, "/app/password", changed)
    if landed.url.path.startswith(("/app/login", "/app/password")):
        raise Disagreement(f"the login of {email} ended at {landed.url.path}: {landed.text[:300]}")


@contextlib.contextmanager
def on_cpu(cpu: int) -> Iterator[None]:
    """Run this thread on ``cpu`` alone (where there are two), off the apps' CPU."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
