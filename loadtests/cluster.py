"""Prove the scale-out kit: Locust through nginx to N gateway replicas, one killed mid-run.

``make cluster-test`` runs ``python -m loadtests.cluster``. It:

1. installs nginx from Debian's packages when it is missing (:func:`ensure_nginx`);
2. makes a fresh store: a PostgreSQL database ``voxloop_cluster_<random>`` on the server of
   ``--store`` (default ``$VOXLOOP_TEST_PG``, else ``postgresql://postgres@127.0.0.1:5432/test``),
   migrated with ``voxloop-gateway migrate`` and dropped at the end; or, with ``--store sqlite``,
   one data dir that every replica shares (SQLite in WAL mode across processes);
3. makes a project and its keys (``voxloop-gateway init``) and starts ``--replicas`` gateways on
   loopback ports with ``--trusted-proxies 127.0.0.1`` and their rate limits raised;
4. runs ``deploy/nginx-voxloop.conf``, its upstream rewritten for those replicas, in an nginx of
   its own: a foreground child (``daemon off``) with its prefix, temp dirs and logs in a temp
   folder, on its own port; ``/etc/nginx`` and the system's nginx service are never touched;
5. runs ``loadtests/cluster_locustfile.py`` (``locustfile.py``'s users, retrying as clients of a
   cluster do) headless through nginx for ``--seconds``, and SIGKILLs replica 1 at ``--kill-at``
   (``--signal TERM``: stops it as systemd would, through its drain);
6. reads ``/v1/stats`` through nginx, stops everything, scans the stores, and judges the run
   (:func:`check`): no acknowledged event lost, stats == scan == the distinct ids the clients
   sent, errors only within ``--window`` seconds after the kill and each one a 503 or a
   connection error that its client sent again; then prints a summary and exits 0 on PASS, 1 on
   FAIL, 2 when the cluster could not be set up.

Every step is bounded in time (replicas 30 s to be ready, nginx 10 s, Locust ``--seconds`` plus
90 s, each stop 15 s) and in count (``--replicas`` 2-8, ``--users`` 3-500, ``--seconds`` 5-3600).
Everything listens and connects on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from loadtests.loadtest import (
    ORIGIN,
    PROJECT,
    UNLIMITED,
    free_port,
    gateway_command,
    init_project,
    serve,
    stop,
    tail,
)

ROOT: Final = Path(__file__).resolve().parents[1]
NGINX_SITE: Final = ROOT / "deploy" / "nginx-voxloop.conf"
LOCUSTFILE: Final = Path(__file__).with_name("cluster_locustfile.py")
DEFAULT_PG: Final = "postgresql://postgres@127.0.0.1:5432/test"
#: how long after the kill errors may still reach clients (nginx's fail_timeout is 5 s)
DEFAULT_WINDOW_S: Final = 10.0
#: an error that ends this little before the kill was still caused by it (clock reads differ)
CLOCK_SLACK_S: Final = 0.05
LOCUST_GRACE_S: Final = 90
STOP_TIMEOUT_S: Final = 10
#: the scan of the PostgreSQL store (the schema of gateway/stores/postgresql.py)
PG_SCAN: Final = (
    "SELECT id, metric, channel, form, score, counted::int FROM events"
    " WHERE project = $1 AND form = ANY($2::text[])"
)
SQLITE_SCAN: Final = (
    "SELECT id, metric, form, score, counted FROM events WHERE project = ? AND form IN"
)

#: event id -> (metric, channel, form, score, counted)
Scan = dict[str, tuple[str, str, str, int, bool]]


# --- nginx ------------------------------------------------------------------------------------


def ensure_nginx() -> str:
    """The nginx binary; installed from Debian's packages first when it is missing.

    As the Makefile does for chromium and wrk: ``apt-get install -y -qq nginx``, after an
    ``apt-get update`` if that fails. ``RUNLEVEL=1`` keeps the package's scripts from starting
    the system's nginx service.

    Raises:
        RuntimeError: when nginx is missing and can't be installed.
    """
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError("nginx is not installed, and there is no apt-get to install it")
    print("installing nginx for the cluster test", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}
    install = ["apt-get", "install", "-y", "-qq", "nginx"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=600)
        done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600)
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if done.returncode or not found:
        raise RuntimeError(f"apt-get install nginx failed:\n{done.stdout}{done.stderr}")
    return found


_UPSTREAM_SERVER = re.compile(r"^([ \t]*)server[ \t]+127\.0\.0\.1:\d+([^;\n]*);[ \t]*\n", re.M)
_LISTEN = re.compile(r"^([ \t]*)listen[ \t]+[^;\n]+;[ \t]*\n", re.M)


def render_site(site: str, ports: Sequence[int], listen_port: int) -> str:
    """``deploy/nginx-voxloop.conf`` for replicas on ``ports`` and nginx on ``listen_port``.

    Only the upstream's ``server 127.0.0.1:…`` lines (one per replica, with the first line's
    parameters) and the ``listen`` lines (one, on loopback) change.

    Raises:
        ValueError: when the file has no such lines.
    """
    servers = list(_UPSTREAM_SERVER.finditer(site))
    listens = list(_LISTEN.finditer(site))
    if not servers or not listens or not ports:
        raise ValueError("the nginx site has no `server 127.0.0.1:PORT` or `listen` line")
    indent, params = servers[0].group(1), servers[0].group(2)
    upstream = "".join(f"{indent}server 127.0.0.1:{port}{params};\n" for port in ports)
    listen = f"{listens[0].group(1)}listen 127.0.0.1:{listen_port};\n"
    out, last = [], 0
    for match in sorted(servers + listens, key=lambda m: m.start()):
        out.append(site[last : match.start()])
        if match is servers[0]:
            out.append(upstream)
        elif match is listens[0]:
            out.append(listen)
        last = match.end()
    out.append(site[last:])
    return "".join(out)


def nginx_main_config(prefix: Path, site: Path) -> str:
    """A main nginx.conf that keeps everything under ``prefix`` and includes ``site``."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
daemon off;
master_process on;
worker_processes auto;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 2048; }}
http {{
{temp}
    log_format cluster '$msec $status "$upstream_addr" "$upstream_status" $request_method $uri';
    access_log {prefix / "access.log"} cluster buffer=64k flush=1s;
    include {site};
}}
"""


@contextmanager
def run_nginx(nginx: str, work: Path, ports: Sequence[int], listen_port: int) -> Iterator[Path]:
    """Run nginx in front of ``ports`` on ``listen_port`` until the block ends; yields its prefix.

    Raises:
        RuntimeError: when its configuration is refused or it doesn't listen within 10 s.
    """
    prefix = work / "nginx"
    (prefix / "temp").mkdir(parents=True)
    # Run as root, nginx's workers drop to an unprivileged user: they must reach the temp dirs.
    for folder in (work, prefix, prefix / "temp"):
        folder.chmod(0o755)
    site = prefix / "voxloop.conf"
    site.write_text(render_site(NGINX_SITE.read_text(), ports, listen_port))
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_main_config(prefix, site))
    command = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    test = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, timeout=30)
    if test.returncode:
        raise RuntimeError(f"nginx refused the configuration:\n{test.stderr}")
    log = (prefix / "stderr.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not _listening(listen_port, 10.0, process):
            raise RuntimeError(f"nginx did not listen:\n{tail(prefix / 'error.log')}")
        yield prefix
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: finish requests, flush the log
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _listening(port: int, timeout: float, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def upstream_counts(access_log: Path) -> tuple[Counter[str], int, Counter[str]]:
    """From nginx's access log: requests answered by each replica, requests nginx sent to more
    than one replica, and the answers (or ``502``: no answer) it got on the tries it gave up."""
    answered: Counter[str] = Counter()
    failed_tries: Counter[str] = Counter()
    retried = 0
    if not access_log.exists():
        return answered, retried, failed_tries
    for line in access_log.read_text(errors="replace").splitlines():
        parts = line.split('"')
        if len(parts) < 5:
            continue
        addresses = [a.strip() for a in parts[1].split(",") if a.strip()]
        statuses = [s.strip() for s in parts[3].split(",") if s.strip()]
        if addresses:
            answered[addresses[-1]] += 1
        if len(addresses) > 1:
            retried += 1
            failed_tries.update(statuses[:-1])
    return answered, retried, failed_tries


# --- the store ----------------------------------------------------------------------------------


def _with_database(url: str, database: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


async def _pg_admin(url: str, statement: str) -> None:
    import asyncpg  # the gateway's own dependency; imported only for PostgreSQL runs

    connection = await asyncpg.connect(_with_database(url, "postgres"), timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def fresh_store(store: str, work: Path, keep: bool) -> Iterator[str | None]:
    """A store of its own for this run; yields the PostgreSQL URL, or None for SQLite.

    For PostgreSQL, a new database ``voxloop_cluster_<random>`` on ``store``'s server, migrated,
    dropped at the end unless ``keep``. ``VOXLOOP_STORE`` is set (or unset, for SQLite) in this
    process's environment, which every gateway command it starts inherits.

    Raises:
        RuntimeError: when the database can't be made or migrated.
    """
    os.environ.pop("VOXLOOP_STORE", None)
    if store == "sqlite":
        yield None
        return
    database = f"voxloop_cluster_{secrets.token_hex(4)}"
    url = _with_database(store, database)
    try:
        asyncio.run(_pg_admin(store, f'CREATE DATABASE "{database}"'))
    except Exception as exc:  # asyncpg's and the socket's errors alike
        raise RuntimeError(f"could not create database {database} on {store}: {exc}") from None
    try:
        os.environ["VOXLOOP_STORE"] = url
        migrate = subprocess.run(
            gateway_command(work / "data", "migrate"), capture_output=True, text=True, timeout=120
        )
        if migrate.returncode:
            raise RuntimeError(f"voxloop-gateway migrate failed:\n{migrate.stdout}{migrate.stderr}")
        yield url
    finally:
        os.environ.pop("VOXLOOP_STORE", None)
        if keep:
            print(f"kept database {database}", file=sys.stderr)
        else:
            asyncio.run(_pg_admin(store, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def scan_store(url: str | None, data_dir: Path, forms: Sequence[str]) -> Scan:
    """Every stored event of this run's ``forms``, read from the store itself."""
    if url is not None:
        return asyncio.run(_scan_pg(url, forms))
    found: Scan = {}
    marks = ",".join("?" * len(forms))
    for path in sorted((data_dir / "stores").glob("*.sqlite3")):
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = connection.execute(f"{SQLITE_SCAN} ({marks})", (PROJECT, *forms)).fetchall()
        finally:
            connection.close()
        for event_id, metric, form, score, counted in rows:
            found[event_id] = (metric, path.stem, form, score, bool(counted))
    return found


async def _scan_pg(url: str, forms: Sequence[str]) -> Scan:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=10)
    try:
        rows = await connection.fetch(PG_SCAN, PROJECT, list(forms))
    finally:
        await connection.close()
    return {r[0]: (r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}


def read_stats(
    host: str, server_key: str, forms: Sequence[str], record: Mapping[str, Any]
) -> dict[str, list[int]]:
    """``/v1/stats`` histograms of this run's forms: ``"metric|channel"`` -> histogram."""
    found: dict[str, list[int]] = {}
    for metric in record["metrics"]:
        for channel in record["channels"]:
            query = [("metric", metric), ("channel", channel)] + [("form", f) for f in forms]
            request = urllib.request.Request(
                f"{host}/v1/stats?{urllib.parse.urlencode(query)}",
                headers={"Authorization": f"Bearer {server_key}"},
            )
            with urllib.request.urlopen(request, timeout=15) as answer:
                found[f"{metric}|{channel}"] = json.load(answer)["total"]["histogram"]
    return found


# --- the verdict --------------------------------------------------------------------------------


@dataclass
class Verdict:
    """The cluster check's result: PASS when ``reasons`` is empty; ``figures`` for the summary."""

    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the run passed."""
        return not self.reasons


def error_kind(status: int) -> str | None:
    """The kind of a failed request a client of a cluster may meet, or None if it must not."""
    if status == 0:
        return "connection error"
    if status in (502, 504):
        return f"{status} (nginx: no replica answered)"
    if status == 503:
        return "503"
    return None


def _histograms(
    record: Mapping[str, Any], events: Mapping[str, tuple[str, str, str, int]]
) -> dict[str, list[int]]:
    """``"metric|channel"`` -> histogram of ``events`` (id -> (metric, channel, form, score))."""
    counts = {
        f"{metric}|{channel}": [0] * (high - low + 1)
        for metric, (low, high) in record["metrics"].items()
        for channel in record["channels"]
    }
    for metric, channel, _form, score in events.values():
        low = record["metrics"][metric][0]
        counts[f"{metric}|{channel}"][score - low] += 1
    return counts


def check(
    record: Mapping[str, Any],
    kill_at: float | None,
    scan: Scan,
    stats: Mapping[str, list[int]],
    *,
    window: float = DEFAULT_WINDOW_S,
    served: Mapping[str, int] | None = None,
    killed: str | None = None,
) -> Verdict:
    """Judge a cluster run.

    Args:
        record: what ``cluster_locustfile.py`` wrote: acked and sent ids, failed requests.
        kill_at: when the replica was killed (``time.time()``), None if none was.
        scan: the stored events of the run's forms, from :func:`scan_store`.
        stats: ``/v1/stats`` after the run, from :func:`read_stats`.
        window: seconds after the kill within which clients may see errors.
        served: requests each replica (``127.0.0.1:port``) answered, from nginx's log.
        killed: the killed replica's ``127.0.0.1:port``.

    Returns:
        The verdict: a reason for each broken rule, and the run's figures.
    """
    verdict = Verdict()
    reasons, figures = verdict.reasons, verdict.figures
    acked: dict[str, tuple[str, str, str, int]] = {}
    for combo, ids in record["acked"].items():
        metric, channel, form = combo.split("|")
        for event_id, score in ids.items():
            acked[event_id] = (metric, channel, form, score)
    sent = set(record["sent"])
    figures.update(requests=record["requests"], events_acked=len(acked), events_sent=len(sent))
    if not acked:
        reasons.append("no event was acknowledged")

    lost = [i for i in acked if i not in scan]
    if lost:
        reasons.append(f"{len(lost)} acknowledged events are not in the store, e.g. {lost[:3]}")
    moved = [i for i, e in acked.items() if i in scan and scan[i][:4] != e]
    if moved:
        reasons.append(f"{len(moved)} events stored unlike they were sent, e.g. {moved[:3]}")
    phantom = [i for i in scan if i not in sent]
    if phantom:
        reasons.append(f"{len(phantom)} stored events no client sent, e.g. {phantom[:3]}")
    unacked = sorted(sent - set(acked))
    if unacked:
        reasons.append(
            f"{len(unacked)} events sent were never acknowledged, even sent again at the end,"
            f" e.g. {unacked[:3]}"
        )
    uncounted = [i for i, row in scan.items() if not row[4]]
    if uncounted:
        reasons.append(f"{len(uncounted)} stored events are not counted, e.g. {uncounted[:3]}")

    expected = _histograms(record, acked)
    scanned = _histograms(record, {i: row[:4] for i, row in scan.items() if row[4]})
    for name in expected:
        if scanned[name] != expected[name]:
            reasons.append(
                f"{name}: the store's scan counts {sum(scanned[name])} {scanned[name]},"
                f" the clients' distinct acked ids {sum(expected[name])} {expected[name]}"
            )
        if stats.get(name) != expected[name]:
            got = stats.get(name)
            reasons.append(
                f"{name}: /v1/stats counts {sum(got or [])} {got},"
                f" the clients' distinct acked ids {sum(expected[name])} {expected[name]}"
            )
    figures["stats_equal"] = all(stats.get(n) == h for n, h in expected.items())
    figures["scan_equal"] = scanned == expected
    reasons.extend(f"the final re-send: {p}" for p in record.get("settle_problems", []))
    reasons.extend(f"raised in a Locust user: {e}" for e in record.get("exceptions", []))

    _check_errors(record, kill_at, window, verdict)
    if kill_at is not None and served is not None and killed is not None:
        figures["served"] = dict(served)
        if not served.get(killed):
            reasons.append(f"the killed replica {killed} never answered: the kill proved nothing")
    return verdict


def _check_errors(
    record: Mapping[str, Any], kill_at: float | None, window: float, verdict: Verdict
) -> None:
    """Every failed request: a kind clients may meet, within the window after the kill."""
    kinds: Counter[str] = Counter()
    bad: list[str] = []
    outside: list[float] = []
    offsets: list[float] = []
    for end, name, status, problem in record["outcomes"]:
        kind = error_kind(status)
        kinds[kind or f"{status or 'no answer'} (must not happen)"] += 1
        offset = end - kill_at if kill_at is not None else float("nan")
        offsets.append(offset)
        if kind is None:
            bad.append(f"{name} {problem}")
        if kill_at is None or not -CLOCK_SLACK_S <= offset <= window:
            outside.append(offset)
    replays = [at - kill_at if kill_at is not None else float("nan") for at, _ in record["replays"]]
    late = [o for o in replays if kill_at is None or not -CLOCK_SLACK_S <= o <= window]
    figures = verdict.figures
    figures["errors"] = dict(kinds)
    figures["error_window"] = (min(offsets), max(offsets)) if offsets else None
    figures["replays"] = sum(n for _, n in record["replays"])
    figures["replay_window"] = (min(replays), max(replays)) if replays else None
    if bad:
        verdict.reasons.append(
            f"{len(bad)} requests failed in a way a cluster must never fail, e.g. {bad[:3]}"
        )
    if outside:
        where = "with no replica killed" if kill_at is None else f"outside 0-{window:g} s of it"
        verdict.reasons.append(
            f"{len(outside)} requests failed {where} (at {sorted(outside)[:5]} s after the kill)"
        )
    if late:
        verdict.reasons.append(
            f"{len(late)} first tries came back with unexpected duplicates outside the failover"
            f" window (at {late[:5]} s after the kill): events were sent twice"
        )


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Run:
    """One cluster run's parameters."""

    replicas: int
    seconds: int
    users: int
    kill_at: float | None
    window: float
    store: str
    signal: str = "KILL"
    keep: bool = False
    verbose: bool = False


def start_locust(host: str, env: Mapping[str, str], run: Run, log: Path) -> subprocess.Popen[bytes]:
    """Start the cluster locustfile headless through ``host``."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["--host", host, "--run-time", f"{run.seconds}s", "--users", str(run.users)]
    command += ["--spawn-rate", str(run.users), "--stop-timeout", str(STOP_TIMEOUT_S)]
    command += ["--only-summary"]
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=None if run.verbose else out,
            stderr=None if run.verbose else subprocess.STDOUT,
            env={**os.environ, **env, "PYTHONPATH": pythonpath},
        )


def cluster_run(run: Run, work: Path) -> tuple[Verdict, dict[str, Any]]:
    """Set up the cluster in ``work``, load it, kill a replica, and judge the run.

    Returns:
        The verdict and the figures of the setup (ports, store, timings) for the summary.

    Raises:
        RuntimeError: when the cluster can't be set up or Locust leaves no record.
    """
    nginx = ensure_nginx()
    data = work / "data"
    about: dict[str, Any] = {
        "store": "sqlite (one shared data dir)" if run.store == "sqlite" else ""
    }
    os.environ["VOXLOOP_TRUSTED_PROXIES"] = "127.0.0.1"
    with ExitStack() as stack:
        url = stack.enter_context(fresh_store(run.store, work, run.keep))
        if url is not None:
            about["store"] = f"PostgreSQL {url.rsplit('/', 1)[-1]} on {run.store.rsplit('/', 1)[0]}"
        site_key, server_key = init_project(data)
        ports = [free_port() for _ in range(run.replicas)]
        gateways = []
        for index, port in enumerate(ports):
            os.environ.update(UNLIMITED)
            gateway = serve(data, port, work / f"gateway-{index + 1}.log")
            stack.callback(stop, gateway)
            gateways.append(gateway)
        listen = free_port()
        prefix = stack.enter_context(run_nginx(nginx, work, ports, listen))
        host = f"http://127.0.0.1:{listen}"
        env = {
            "VOXLOOP_SITE_KEY": site_key,
            "VOXLOOP_SERVER_KEY": server_key,
            "VOXLOOP_ORIGIN": ORIGIN,
            "VOXLOOP_LOAD_FORM_PREFIX": f"cluster-{secrets.token_hex(4)}",
            "VOXLOOP_CLUSTER_RECORD": str(work / "record.json"),
        }
        started = time.monotonic()
        locust = start_locust(host, env, run, work / "locust.log")
        kill_at = None
        try:
            if run.kill_at is not None:
                while time.monotonic() - started < run.kill_at and locust.poll() is None:
                    time.sleep(0.05)
                kill_at = time.time()
                gateways[0].send_signal(signal.Signals[f"SIG{run.signal}"])
            code = locust.wait(timeout=run.seconds + STOP_TIMEOUT_S + LOCUST_GRACE_S)
        except subprocess.TimeoutExpired:
            locust.kill()
            locust.wait()
            raise RuntimeError("locust did not finish in time") from None
        finally:
            if locust.poll() is None:
                locust.kill()
                locust.wait()
        about.update(locust_status=code, locust_seconds=time.monotonic() - started)
        try:
            record = json.loads((work / "record.json").read_text())
        except (OSError, ValueError):
            raise RuntimeError(
                f"locust wrote no record (exit status {code}):\n{tail(work / 'locust.log')}"
            ) from None
        stats = read_stats(host, server_key, record["forms"], record)
        for gateway in gateways:
            stop(gateway)
        scan = scan_store(url, data, record["forms"])
        served, retried, failed_tries = upstream_counts(prefix / "access.log")
        about.update(nginx_retried=retried, nginx_failed_tries=dict(failed_tries))
        about["ports"] = ports
        verdict = check(
            record,
            kill_at,
            scan,
            stats,
            window=run.window,
            served=served,
            killed=f"127.0.0.1:{ports[0]}" if kill_at else None,
        )
        about["record"] = record
    return verdict, about


def print_summary(run: Run, verdict: Verdict, about: Mapping[str, Any]) -> None:
    """The run's figures and verdict, in a few lines."""
    figures, record = verdict.figures, about["record"]
    seconds = about["locust_seconds"]
    busy = [int(s) for s in record["per_second"]]
    span = max(busy) - min(busy) + 1 if busy else 1
    print(
        f"voxloop cluster test: {run.replicas} replicas behind nginx, {about['store']};"
        f" {run.seconds} s, up to {run.users} users"
    )
    kill = (
        "no replica killed"
        if run.kill_at is None
        else f"replica 1 sent SIG{run.signal} at {run.kill_at:g} s"
    )
    print(f"  load      {kill}; locust ran {seconds:.1f} s (status {about['locust_status']})")
    print(
        f"  requests  {figures['requests']:,} ({figures['requests'] / span:,.1f}/s);"
        f" p50 {record['p50_ms']} ms, p99 {record['p99_ms']} ms"
    )
    print(
        f"  events    {figures['events_acked']:,} distinct ids acked"
        f" ({figures['events_acked'] / span:,.1f} events/s through nginx),"
        f" {figures['events_sent']:,} sent; {record['settled']:,} sent again at the end"
    )
    tries = record["tries_to_success"]
    again = sum(n for t, n in tries.items() if int(t) > 0)
    errors = sum(figures["errors"].values())
    share = errors / max(figures["requests"], 1)
    rate = f"{errors:,} of {figures['requests']:,} requests ({share:.2%})"
    print(
        f"  failover  client errors {rate}{' ' + str(figures['errors']) if errors else ''};"
        f" POSTs that needed a client retry {again:,},"
        f" given up after {record.get('max_tries')} tries {record.get('gave_up', 0):,}"
        " (sent again at the end)"
    )
    window = figures["error_window"]
    where = "none" if window is None else f"{window[0]:+.2f} s to {window[1]:+.2f} s after the kill"
    span_s = 0.0 if window is None else max(window[1], 0) - max(window[0], 0)
    print(f"            error window {where} ({span_s:.2f} s; allowed {run.window:g} s)")
    print(
        f"            nginx re-sent {about['nginx_retried']:,} requests to another replica"
        f" (failed tries {about['nginx_failed_tries'] or 'none'}); events it re-sent that the"
        f" dying replica had committed, answered as duplicates: {figures['replays']:,}"
    )
    served = figures.get("served")
    if served:
        print(f"            answered per replica {dict(sorted(served.items()))}")
    print(
        f"  checks    acked events in the store, stats == scan == distinct acked ids:"
        f" stats {'equal' if figures['stats_equal'] else 'DIFFER'},"
        f" scan {'equal' if figures['scan_equal'] else 'DIFFERS'}"
    )
    for reason in verdict.reasons:
        print(f"  FAIL      {reason}")
    print(f"  result    {'PASS' if verdict.ok else 'FAIL (--keep keeps the logs and the store)'}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.cluster",
        description="Load N gateway replicas through nginx, kill one, check nothing was lost.",
    )
    parser.add_argument("--replicas", type=int, default=3, help="gateways (default 3, 2-8)")
    parser.add_argument("--seconds", type=int, default=40, help="Locust's run time (default 40)")
    parser.add_argument("--users", type=int, default=30, help="peak simulated users (default 30)")
    parser.add_argument(
        "--kill-at",
        type=float,
        help="SIGKILL replica 1 this many seconds in (default 40%% of --seconds; 0: no kill)",
    )
    parser.add_argument(
        "--signal",
        choices=["KILL", "TERM"],
        default="KILL",
        help="KILL (a crash, the default) or TERM (a stop: the gateway drains first)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=DEFAULT_WINDOW_S,
        help=f"seconds after the kill errors may reach clients (default {DEFAULT_WINDOW_S:g})",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("VOXLOOP_TEST_PG") or DEFAULT_PG,
        help="sqlite, or a PostgreSQL URL whose server gets a fresh database"
        " (default $VOXLOOP_TEST_PG, else %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and database")
    parser.add_argument("--verbose", action="store_true", help="show Locust's own output")
    parser.add_argument("--summary", type=Path, help="also write the verdict there as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cluster test; returns 0 on PASS, 1 on FAIL, 2 when it could not run."""
    args = _parser().parse_args(argv)
    ok_store = args.store == "sqlite" or args.store.startswith(("postgresql://", "postgres://"))
    if not (2 <= args.replicas <= 8 and 5 <= args.seconds <= 3600 and 3 <= args.users <= 500):
        print("--replicas must be 2-8, --seconds 5-3600, --users 3-500", file=sys.stderr)
        return 2
    kill_at = args.seconds * 0.4 if args.kill_at is None else args.kill_at
    if not (ok_store and 0 <= kill_at < args.seconds and args.window > 0):
        print("--store: sqlite or postgresql://…; --kill-at within the run", file=sys.stderr)
        return 2
    run = Run(
        replicas=args.replicas,
        seconds=args.seconds,
        users=args.users,
        kill_at=kill_at or None,
        signal=args.signal,
        window=args.window,
        store=args.store,
        keep=args.keep,
        verbose=args.verbose,
    )
    work = Path(tempfile.mkdtemp(prefix="voxloop-cluster-"))
    try:
        verdict, about = cluster_run(run, work)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"voxloop cluster test: {exc}", file=sys.stderr)
        for log in sorted(work.glob("gateway-*.log")) + [work / "nginx" / "error.log"]:
            print(f"--- {log.name}\n{tail(log, 15)}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_summary(run, verdict, about)
    if args.summary:
        figures = {k: v for k, v in about.items() if k != "record"}
        document = {"ok": verdict.ok, "reasons": verdict.reasons, **verdict.figures, **figures}
        args.summary.write_text(json.dumps(document, indent=2))
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
