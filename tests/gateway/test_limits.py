"""Tests for gateway/limits.py: token buckets, and the client address behind trusted proxies."""

from __future__ import annotations

import copy
import ipaddress
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxloop_gateway.http.limits import IPNetwork, RateLimiter, client_address, parse_trusted

# --- RateLimiter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst", "max_tracked"),
    [
        (0, 10, 10),
        (-1, 10, 10),
        (math.nan, 10, 10),
        (math.inf, 10, 10),
        (1, 0.5, 10),
        (1, math.nan, 10),
        (1, math.inf, 10),
        (1, 10, 0),
    ],
    ids=[
        "zero-rate",
        "negative-rate",
        "nan-rate",
        "infinite-rate",
        "burst-below-one",
        "nan-burst",
        "infinite-burst",
        "nothing-tracked",
    ],
)
def test_limiter_settings_out_of_range_are_refused(
    rate: float, burst: float, max_tracked: int
) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst, max_tracked=max_tracked)


def test_burst_is_allowed_then_the_wait_is_exact() -> None:
    limiter = RateLimiter(rate=2, burst=3)
    assert [limiter.take("k", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k", now=100.0) == 0.5
    assert limiter.take("k", now=100.25) == 0.25
    assert limiter.take("k", now=100.5) == 0.0


def test_a_refused_take_takes_nothing() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.take("k", now=0.0) == 0.0
    for _ in range(100):
        assert limiter.take("k", now=0.5) == 0.5
    assert limiter.take("k", now=1.0) == 0.0


def test_bucket_refills_only_up_to_the_burst() -> None:
    limiter = RateLimiter(rate=10, burst=5)
    limiter.take("k", now=0.0, cost=5)
    allowed = sum(limiter.take("k", now=3600.0) == 0.0 for _ in range(100))
    assert allowed == 5


def test_cost_takes_that_many_tokens() -> None:
    limiter = RateLimiter(rate=1, burst=10)
    assert limiter.take("k", now=0.0, cost=7) == 0.0
    assert limiter.take("k", now=0.0, cost=4) == 1.0
    assert limiter.take("k", now=0.0, cost=3) == 0.0
    assert limiter.take("k", now=0.0, cost=0) == 0.0


@pytest.mark.parametrize("cost", [-1, 11, math.nan], ids=["negative", "over-burst", "nan"])
def test_cost_out_of_range_is_refused(cost: float) -> None:
    with pytest.raises(ValueError, match="cost must be between 0 and burst"):
        RateLimiter(rate=1, burst=10).take("k", now=0.0, cost=cost)


@pytest.mark.parametrize("now", [math.nan, math.inf], ids=["nan", "inf"])
def test_time_must_be_finite(now: float) -> None:
    with pytest.raises(ValueError, match="now must be a finite number"):
        RateLimiter(rate=1, burst=10).take("k", now=now)


def test_names_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.take("key:a", now=0.0) == 0.0
    assert limiter.take("key:a", now=0.0) > 0
    assert limiter.take("key:b", now=0.0) == 0.0
    assert limiter.take("addr:203.0.113.9", now=0.0) == 0.0


def test_a_clock_stepping_back_adds_no_tokens() -> None:
    limiter = RateLimiter(rate=1, burst=2)
    limiter.take("k", now=10.0, cost=2)
    assert limiter.take("k", now=5.0) == 1.0
    assert limiter.take("k", now=10.0) == 1.0
    assert limiter.take("k", now=11.0) == 0.0


def test_least_recently_used_bucket_is_evicted_past_max_tracked() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_tracked=2)
    limiter.take("a", now=0.0)
    limiter.take("b", now=0.0)
    assert limiter.take("a", now=0.0) > 0  # "a" is now the most recently used
    limiter.take("c", now=0.0)  # evicts "b"
    assert len(limiter) == 2
    assert limiter.take("a", now=0.0) > 0  # still tracked, still empty
    assert limiter.take("b", now=0.0) == 0.0  # forgotten, so full again: the safe direction


def test_memory_stays_bounded_under_a_flood_of_names() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_tracked=1000)
    for n in range(20_000):
        assert limiter.take(f"198.51.100.{n}", now=float(n)) == 0.0
    assert len(limiter) == 1000


# Realistic ranges: rates from one an hour-ish to thousands a second, clocks like monotonic().
rates = st.floats(0.01, 1000)
bursts = st.floats(1, 1000)
steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.floats(0, 5),  # seconds since the previous take
        st.floats(0, 1),  # cost, as a fraction of the burst
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(rate=rates, burst=bursts, start=st.floats(0, 1e6), takes=steps)
def test_never_allows_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: float, start: float, takes: list[tuple[str, float, float]]
) -> None:
    limiter = RateLimiter(rate, burst)
    now = start
    first_seen: dict[str, float] = {}
    allowed: dict[str, float] = {}
    for name, step, fraction in takes:
        now += step
        cost = burst * fraction
        first_seen.setdefault(name, now)
        wait = limiter.take(name, now, cost)
        assert wait == 0.0 or (wait > 0 and math.isfinite(wait))
        if wait == 0.0:
            allowed[name] = allowed.get(name, 0.0) + cost
        ceiling = burst + rate * (now - first_seen[name])
        assert allowed.get(name, 0.0) <= ceiling * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(rate=rates, burst=bursts, start=st.floats(0, 1e6), takes=steps)
def test_waiting_the_returned_time_is_enough(
    rate: float, burst: float, start: float, takes: list[tuple[str, float, float]]
) -> None:
    limiter = RateLimiter(rate, burst)
    now = start
    for name, step, fraction in takes:
        now += step
        cost = burst * fraction
        wait = limiter.take(name, now, cost)
        if wait > 0:
            later = copy.deepcopy(limiter)
            assert later.take(name, now + wait, cost) == 0.0


# --- parse_trusted -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", []),
        ("  ", []),
        ("10.0.0.0/8, 127.0.0.1, ::1", ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]),
        ("192.168.1.7/24,", ["192.168.1.0/24"]),
        ("2001:db8::/32", ["2001:db8::/32"]),
    ],
    ids=["empty", "blank", "mixed", "host-bits-and-trailing-comma", "ipv6-network"],
)
def test_parse_trusted_reads_networks_and_addresses(spec: str, expected: list[str]) -> None:
    assert parse_trusted(spec) == [ipaddress.ip_network(n) for n in expected]


@pytest.mark.parametrize(
    "bad", ["localhost", "10.0.0.0/33", "*", "10.0.0.0/8 127.0.0.1", "1.2.3.4:80"]
)
def test_parse_trusted_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_trusted(f"10.0.0.0/8, {bad}")
    assert str(caught.value) == f"{bad!r} is neither an IP address nor a network"


# --- client_address ----------------------------------------------------------------------------

TRUSTED = parse_trusted("10.0.0.0/8, 2001:db8:ffff::/48")
PROXY = "10.0.0.1"


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        (None, "203.0.113.9", "unknown"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        (PROXY, None, PROXY),
        (PROXY, "", PROXY),
        (PROXY, "203.0.113.9", "203.0.113.9"),
        (PROXY, "203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (PROXY, "198.51.100.66, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (PROXY, "10.0.0.5, 10.0.0.6", "10.0.0.5"),
        (PROXY, "203.0.113.9, garbage, 10.0.0.2", "10.0.0.2"),
        (PROXY, "203.0.113.9, unknown", PROXY),
        (PROXY, "203.0.113.9:5678", "203.0.113.9"),
        (PROXY, "[2001:db8::9]:443", "2001:db8::9"),
        (PROXY, "[2001:db8::9]", "2001:db8::9"),
        (PROXY, "2001:db8::9, 2001:db8:ffff::1", "2001:db8::9"),
        (PROXY, "203.0.113.9:http", PROXY),
        (PROXY, "203.0.113.9:70000", PROXY),
        (PROXY, "[203.0.113.9]:80", PROXY),
        (PROXY, "203.0.113.9,, 10.0.0.2 ,", "203.0.113.9"),
        (PROXY, "fe80::1%eth0", "fe80::1"),
        (PROXY, "::ffff:203.0.113.9", "203.0.113.9"),
        ("::ffff:10.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("2001:db8:ffff::7", "203.0.113.9", "203.0.113.9"),
        (PROXY, "\uff12\uff10\uff13.0.113.9", PROXY),
        ("testclient", "203.0.113.9", "testclient"),
    ],
    ids=[
        "no-peer",
        "untrusted-peer-header-ignored",
        "trusted-peer-no-header",
        "trusted-peer-empty-header",
        "one-hop",
        "two-trusted-hops",
        "forged-entries-left-of-the-client",
        "all-trusted-gives-leftmost",
        "garbage-stops-the-walk",
        "unknown-right-behind-the-peer",
        "ipv4-with-port",
        "bracketed-ipv6-with-port",
        "bracketed-ipv6",
        "ipv6-behind-ipv6-proxy",
        "named-port",
        "port-out-of-range",
        "bracketed-ipv4",
        "empty-entries-skipped",
        "ipv6-zone-dropped",
        "ipv4-mapped-entry",
        "ipv4-mapped-trusted-peer",
        "ipv6-trusted-peer",
        "fullwidth-digits",
        "peer-not-an-address",
    ],
)
def test_client_address(peer: str | None, forwarded_for: str | None, expected: str) -> None:
    assert client_address(peer, forwarded_for, TRUSTED) == expected


def test_without_trusted_proxies_the_header_is_never_believed() -> None:
    assert client_address(PROXY, "203.0.113.9", []) == PROXY


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        (", ".join(["10.0.0.7"] * 10_000), "10.0.0.7"),
        (", ".join(["203.0.113.9"] * 10_000), "203.0.113.9"),
        (",".join(["junk"] * 10_000), PROXY),
        ("1" * 1_000_000, PROXY),
        ("\U0001f4a9" * 10_000 + ", 203.0.113.9", "203.0.113.9"),
        ("\0\r\n\t, \ufeff10.0.0.2", PROXY),
    ],
    ids=["10k-trusted", "10k-untrusted", "10k-garbage", "huge-entry", "emoji", "control-chars"],
)
def test_hostile_headers_do_not_raise(forwarded_for: str, expected: str) -> None:
    assert client_address(PROXY, forwarded_for, TRUSTED) == expected


def canonical(text: str) -> str | None:
    """The canonical form of an address entry as the tests understand it, if it is one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


entries = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: f"{a}:{8080}"),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]:443"),
    st.sampled_from(["10.1.2.3", "2001:db8:ffff::1", "unknown", "", " ", "[::1", "1.2.3.4:"]),
    st.text(max_size=20),
)
peers = st.one_of(st.none(), st.sampled_from([PROXY, "2001:db8:ffff::2"]), entries)
trusted_sets: list[list[IPNetwork]] = [
    [],
    TRUSTED,
    parse_trusted("0.0.0.0/0, ::/0"),
]


@settings(max_examples=500, deadline=None)
@given(
    peer=peers,
    forwarded_for=st.one_of(st.none(), st.text(), st.lists(entries).map(",".join)),
    trusted=st.sampled_from(trusted_sets),
)
def test_client_address_is_the_peer_or_an_entry_and_never_raises(
    peer: str | None, forwarded_for: str | None, trusted: list[IPNetwork]
) -> None:
    result = client_address(peer, forwarded_for, trusted)
    if peer is None:
        assert result == "unknown"
        return
    candidates = {peer, canonical(peer)}
    candidates.update(canonical(entry) for entry in (forwarded_for or "").split(","))
    assert result in candidates
