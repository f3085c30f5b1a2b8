"""Run the Locust load test against a fresh local gateway, headless, for a bounded time.

``make loadtest`` runs ``python -m loadtests.loadtest``: it makes a temporary data dir, a project
with a site key and a server key (``voxloop-gateway init``), serves the gateway on a free loopback
port with its rate limits raised, runs ``loadtests/locustfile.py`` headless for ``--seconds``,
prints a short summary, stops the gateway, and exits with Locust's status: 0 only when every
request was answered as the contract says and ``/v1/stats`` equals what was acknowledged.

Every step is bounded: the gateway gets 30 s to become ready, Locust ``--seconds`` plus 70 s in
all (its users 10 s to finish the request in hand), the gateway 15 s to stop; ``--seconds`` is at
most an hour and ``--users`` at most 1,000. Everything listens and connects on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

LOCUSTFILE: Final = Path(__file__).with_name("locustfile.py")
ORIGIN: Final = "https://shop.example"
PROJECT: Final = "load"
READY_TIMEOUT_S: Final = 30.0
STOP_GRACE_S: Final = 10
#: the gateway's limits, raised so that the load is measured rather than refused with 429
UNLIMITED: Final = {
    f"VOXLOOP_{name}": "1e9" for name in ("KEY_RATE", "KEY_BURST", "ADDRESS_RATE", "ADDRESS_BURST")
}


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def gateway_command(data_dir: Path, *args: str) -> list[str]:
    """The ``voxloop-gateway`` command line with ``args``, run by this interpreter."""
    return [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(data_dir), *args]


def init_project(data_dir: Path) -> tuple[str, str]:
    """Create the data dir's project; returns its (site key, server key).

    Raises:
        RuntimeError: when ``voxloop-gateway init`` fails or prints no keys.
    """
    done = subprocess.run(
        gateway_command(data_dir, "init", "--project", PROJECT, "--origin", ORIGIN),
        capture_output=True,
        text=True,
        timeout=60,
    )
    site = re.search(r"\b(pk_\S+)", done.stdout)
    server = re.search(r"\b(sk_\S+)", done.stdout)
    if done.returncode or site is None or server is None:
        raise RuntimeError(f"voxloop-gateway init failed:\n{done.stdout}{done.stderr}")
    return site.group(1), server.group(1)


def serve(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start the gateway on ``127.0.0.1:port`` and wait until ``/readyz`` answers 200.

    Raises:
        RuntimeError: when it exits or is not ready within ``READY_TIMEOUT_S``.
    """
    with log.open("wb") as out:
        process = subprocess.Popen(
            gateway_command(data_dir, "serve", "--host", "127.0.0.1", "--port", str(port)),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **UNLIMITED},
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return process
        except OSError:  # not listening yet, or 503 while its stores open
            time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"the gateway did not become ready:\n{tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` (SIGTERM, then SIGKILL after 15 s) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"


def errors(log: Path) -> str:
    """Locust's error report from its log, or the log's last lines when it printed none."""
    text = log.read_text(errors="replace") if log.exists() else ""
    start = text.rfind("Error report")
    return text[start:].rstrip() if start >= 0 else f"locust's last lines:\n{tail(log, 15)}"


def run_locust(
    host: str,
    env: dict[str, str],
    seconds: int,
    users: int,
    log: Path,
    verbose: bool,
) -> int:
    """Run the locustfile headless for ``seconds``; returns Locust's exit status (124 if hung)."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["--host", host, "--run-time", f"{seconds}s", "--users", str(users)]
    command += ["--spawn-rate", str(users), "--stop-timeout", str(STOP_GRACE_S), "--only-summary"]
    with log.open("wb") as out:
        sink = None if verbose else out
        try:
            done = subprocess.run(
                command,
                stdout=sink,
                stderr=subprocess.STDOUT if sink else None,
                env={**os.environ, **env},
                timeout=seconds + STOP_GRACE_S + 60,
            )
        except subprocess.TimeoutExpired:
            print(f"locust did not finish within {seconds + STOP_GRACE_S + 60} s", file=sys.stderr)
            return 124
    return done.returncode


def print_summary(summary: dict[str, Any], seconds: int, users: int, code: int) -> None:
    """Print the run's figures and verdict in a few lines."""
    requests, failures = summary["requests"], summary["failures"]
    print(f"voxloop load test: {seconds} s, up to {users} users, against a local gateway")
    print(
        f"  requests  {requests:,} ({summary['requests_per_s']:,.1f}/s), failures {failures:,};"
        f" p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, p99 {summary['p99_ms']} ms"
    )
    width = max((len(name) for name, _, _ in summary["by_name"]), default=0)
    for name, count, failed in summary["by_name"]:
        print(f"    {name:<{width}} {count:>7,}  failed {failed:,}")
    print(
        f"  events    {summary['events_acked']:,} distinct ids acknowledged; retried"
        f" {summary['retried_events']:,}, answered as duplicates {summary['retries_confirmed']:,}"
    )
    if summary["settled_events"]:
        print(f"            {summary['settled_events']:,} cut off by the stop, sent again")
    compared, histograms = summary["stats_compared"], summary["stats_histograms"]
    if summary["stats_ok"]:
        verdict = "all equal what was acknowledged: ok"
    elif compared < histograms:
        verdict = f"only {compared} could be read: FAIL"
    else:
        verdict = "some differ from what was acknowledged: FAIL"
    print(f"  stats     {histograms} histograms (metric x channel, this run's forms) {verdict}")
    for reason in summary["reasons"]:
        print(f"  FAIL      {reason}")
    print(f"  result    {'pass' if code == 0 else 'FAIL'} (locust exit status {code})")


def preload(host: str, server_key: str, form: str, count: int) -> None:
    """Post ``count`` events to ``form`` that the load test never sends, so its gate must fail."""
    events = [
        {"id": uuid.uuid4().hex, "channel": "app", "form": form, "metric": "nps", "score": 10}
        for _ in range(count)
    ]
    request = urllib.request.Request(
        f"{host}/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"Authorization": f"Bearer {server_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        if answer.status != 202:
            raise RuntimeError(f"preload answered {answer.status}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.loadtest",
        description="Load-test a fresh local gateway with Locust; non-zero exit on any failure.",
    )
    parser.add_argument("--seconds", type=int, default=20, help="run time (default 20, max 3600)")
    parser.add_argument("--users", type=int, default=12, help="peak simulated users (default 12)")
    parser.add_argument("--verbose", action="store_true", help="show Locust's own output")
    parser.add_argument("--summary", type=Path, help="also write the summary there as JSON")
    checks = parser.add_argument_group("self-checks of the gate (the run must then fail)")
    checks.add_argument("--site-key", help="send this site key instead of the project's")
    checks.add_argument("--server-key", help="send this server key instead of the project's")
    checks.add_argument(
        "--preload",
        type=int,
        default=0,
        metavar="N",
        help="post N events to this run's checkout form first, behind the load test's back",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test; returns the exit status (Locust's, or 2 if the gateway won't start)."""
    args = _parser().parse_args(argv)
    if not 1 <= args.seconds <= 3600 or not 3 <= args.users <= 1000:
        print("--seconds must be 1-3600 and --users 3-1000", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="voxloop-load-") as tmp:
        work = Path(tmp)
        port = free_port()
        host = f"http://127.0.0.1:{port}"
        try:
            site_key, server_key = init_project(work / "data")
            gateway = serve(work / "data", port, work / "gateway.log")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"voxloop load test: {exc}", file=sys.stderr)
            return 2
        prefix = f"load-{secrets.token_hex(4)}"
        env = {
            "VOXLOOP_SITE_KEY": args.site_key or site_key,
            "VOXLOOP_SERVER_KEY": args.server_key or server_key,
            "VOXLOOP_ORIGIN": ORIGIN,
            "VOXLOOP_LOAD_FORM_PREFIX": prefix,
            "VOXLOOP_LOAD_SUMMARY": str(work / "summary.json"),
        }
        try:
            if args.preload:
                preload(host, server_key, f"{prefix}.checkout", args.preload)
            log = work / "locust.log"
            code = run_locust(host, env, args.seconds, args.users, log, args.verbose)
        except (OSError, RuntimeError) as exc:
            print(f"voxloop load test: {exc}", file=sys.stderr)
            return 2
        finally:
            stop(gateway)
        try:
            summary = json.loads((work / "summary.json").read_text())
        except (OSError, ValueError):
            print(f"locust wrote no summary (exit status {code}):\n{tail(work / 'locust.log')}")
            return code or 1
        print_summary(summary, args.seconds, args.users, code)
        if code and not args.verbose:
            print(f"\n{errors(work / 'locust.log')}")
        if args.summary:
            args.summary.write_text(json.dumps({**summary, "exit_status": code}, indent=2))
        return code


if __name__ == "__main__":
    raise SystemExit(main())
