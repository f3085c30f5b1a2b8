"""deploy/nginx-voxloop.conf works on Debian's nginx as installed: with its default site enabled.

Debian's package enables /etc/nginx/sites-enabled/default, a ``default_server`` on port 80 that
answers 404 to everything. nginx reads conf.d/*.conf (where the guide puts voxloop's file) before
sites-enabled/*, in one http block; these tests lay the files out the same way.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from loadtests.cluster import ensure_nginx, nginx_main_config, render_site
from tests.packaging.conftest import ROOT, free_port, run, serving

SITE = ROOT / "deploy" / "nginx-voxloop.conf"
#: /etc/nginx/sites-available/default as Debian's nginx package ships it, without its comments
DEBIAN_DEFAULT_SITE = """\
server {
\tlisten 80 default_server;
\tlisten [::]:80 default_server;
\troot /var/www/html;
\tindex index.html index.htm index.nginx-debian.html;
\tserver_name _;
\tlocation / {
\t\ttry_files $uri $uri/ =404;
\t}
}
"""


@pytest.fixture(scope="module")
def nginx() -> str:
    """The nginx binary, installed from Debian's packages when missing (as the cluster test)."""
    return ensure_nginx()


def debian_layout(prefix: Path, voxloop_site: str, default_site: str) -> list[str]:
    """An nginx command line for voxloop's site in conf.d and Debian's default site enabled."""
    (prefix / "temp").mkdir(parents=True)
    for folder in (prefix, prefix / "temp"):
        folder.chmod(0o755)
    (prefix / "voxloop.conf").write_text(voxloop_site)
    (prefix / "default").write_text(default_site)
    sites = prefix / "sites.conf"
    sites.write_text(f"include {prefix / 'voxloop.conf'};\ninclude {prefix / 'default'};\n")
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_main_config(prefix, sites))
    return ["-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]


def test_the_site_as_shipped_passes_nginx_t_beside_debians_default_site(
    nginx: str, tmp_path: Path
) -> None:
    args = debian_layout(tmp_path / "nginx", SITE.read_text(), DEBIAN_DEFAULT_SITE)
    checked = subprocess.run([nginx, *args, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    # No "conflicting server name ... ignored": that warning means requests go elsewhere.
    assert "[warn]" not in checked.stderr and "[emerg]" not in checked.stderr, checked.stderr


@contextmanager
def running(nginx: str, args: list[str]) -> Iterator[None]:
    """nginx with ``args`` until the block ends."""
    log = Path(args[1]) / "stderr.log"
    with log.open("w") as out:
        process = subprocess.Popen([nginx, *args], stdout=out, stderr=subprocess.STDOUT)
        try:
            yield
        finally:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def get(url: str, host: str) -> tuple[int, bytes]:
    """The status and body of ``GET url`` with ``Host: host``."""
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize(
    "host",
    ["feedback.shop.example", "127.0.0.1"],
    ids=["a-host-name", "the-address"],
)
def test_requests_reach_the_gateway_though_debians_default_site_is_enabled(
    nginx: str, venv: Path, tmp_path: Path, host: str
) -> None:
    data = tmp_path / "data"
    run([str(venv / "bin" / "voxloop-gateway"), "--data-dir", str(data), "init"], tmp_path)
    gateway_port, port = free_port(), free_port()
    site = render_site(SITE.read_text(), [gateway_port], port)
    default = DEBIAN_DEFAULT_SITE.replace("\tlisten [::]:80 default_server;\n", "").replace(
        "listen 80 default_server", f"listen 127.0.0.1:{port} default_server"
    )
    args = debian_layout(tmp_path / "nginx", site, default)
    with serving(venv, data, gateway_port), running(nginx, args):
        status, body = 0, b""
        for _ in range(100):  # nginx starts listening within a moment
            try:
                status, body = get(f"http://127.0.0.1:{port}/readyz", host)
                break
            except OSError:
                time.sleep(0.05)
        assert status == 200, body[:200]
        assert json.loads(body)["ready"] is True
