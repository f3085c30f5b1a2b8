"""The SSRF guard: which addresses webhooks may reach, checked at add and at every connection,
and TLS still checked by the URL's host name while the connection goes to the address checked."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from voxloop_gateway.integrations.ssrf import (
    TargetRefused,
    check_url,
    guarded_client,
    refusal,
)

from .receivers import LOOPBACK, Receiver, receiver, tls_files, trusting

__all__ = ["receiver"]  # a fixture

REFUSED_ADDRESSES = [
    ("10.0.0.1", "private"),
    ("192.168.1.20", "private"),
    ("172.16.0.1", "private"),
    ("127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "non-public"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "link-local"),
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
]


@pytest.mark.parametrize(
    ("address", "rule"), REFUSED_ADDRESSES, ids=[a for a, _ in REFUSED_ADDRESSES]
)
def test_addresses_that_are_not_public_are_refused(address: str, rule: str) -> None:
    assert refusal(ipaddress.ip_address(address), ()) == rule


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), ()) is None


def test_the_allowed_networks_pass_and_only_they() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), LOOPBACK) is None
    assert refusal(ipaddress.ip_address("127.8.9.10"), LOOPBACK) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), LOOPBACK) == "private"
    assert refusal(ipaddress.ip_address("::1"), LOOPBACK) == "loopback"
    assert refusal(ipaddress.ip_address("169.254.169.254"), LOOPBACK) == "link-local"


REFUSED_URLS = [
    ("http://10.0.0.1/hook", "private"),
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 as one number
    ("ftp://example.com/hook", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("gopher://127.0.0.1/", "http or https"),
    ("http:///hook", "host"),
    ("hook.example.com/path", "http or https"),
    ("", "http or https"),
]


@pytest.mark.parametrize(("url", "said"), REFUSED_URLS, ids=[u or "empty" for u, _ in REFUSED_URLS])
async def test_urls_are_refused_with_a_422_naming_url_and_the_rule(url: str, said: str) -> None:
    with pytest.raises(TargetRefused) as caught:
        await check_url(url, ())
    assert caught.value.status == 422
    assert caught.value.message.startswith("url ")
    assert said in caught.value.message


async def test_the_allow_setting_lets_loopback_through_and_nothing_else() -> None:
    assert await check_url("http://127.0.0.1:9/hook", LOOPBACK) == "http://127.0.0.1:9/hook"
    assert await check_url("http://localhost:9/x?y=1", LOOPBACK) == "http://localhost:9/x?y=1"
    for url in ("http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/"):
        with pytest.raises(TargetRefused):
            await check_url(url, LOOPBACK)


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(TargetRefused, match="does not resolve"):
        await check_url("https://no-such-host.invalid/hook", ())


async def test_every_connection_is_checked_where_it_is_made(receiver: Receiver) -> None:
    async with guarded_client((), 2.0) as client:
        with pytest.raises(TargetRefused, match="loopback"):
            await client.post(receiver.url, content=b"{}")
    assert receiver.received() == []  # nothing reached it
    async with guarded_client(LOOPBACK, 2.0) as client:
        answer = await client.post(receiver.url.replace("127.0.0.1", "localhost"), content=b"{}")
    assert answer.status_code == 200
    assert [r.headers["host"] for r in receiver.received()] == [f"localhost:{receiver.port}"]


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[Receiver, Path]]:
    cert, key = tls_files(tmp_path, "localhost")
    running = Receiver(ssl_files=(cert, key)).start()
    yield running, cert
    running.stop()


async def test_https_is_verified_by_the_urls_host_name(
    tls_receiver: tuple[Receiver, Path], tmp_path: Path
) -> None:
    running, cert = tls_receiver
    url = f"https://localhost:{running.port}/hook"
    async with guarded_client(LOOPBACK, 2.0, verify=trusting(cert)) as client:
        answer = await client.post(url, content=b"{}")
        assert answer.status_code == 200
        # The same server, reached by its address: the certificate names localhost, not it.
        with pytest.raises(httpx.ConnectError, match="(?i)certificate|hostname|IP address"):
            await client.post(f"https://127.0.0.1:{running.port}/hook", content=b"{}")
    other, _ = tls_files(tmp_path, "other.example")
    async with guarded_client(LOOPBACK, 2.0, verify=trusting(other)) as client:
        with pytest.raises(httpx.ConnectError, match="(?i)certificate"):
            await client.post(url, content=b"{}")
    assert len(running.received()) == 1
