"""Rate limits per key and per client address, and finding the client address behind proxies.

The wire contract limits requests per key and per client address (429 with ``Retry-After``).
:class:`RateLimiter` is a set of token buckets, one per name, bounded in memory so that a flood
of distinct names cannot grow it. :func:`client_address` says which address a request comes
from: the socket's peer, or, when the peer is a trusted proxy (a load balancer), the address the
proxies recorded in ``X-Forwarded-For``. :func:`parse_trusted` reads the trusted proxies setting.

Errors: only ``ValueError`` for bad settings; nothing here raises on what a client sends.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import TypeAlias

__all__ = ["IPAddress", "IPNetwork", "RateLimiter", "client_address", "parse_trusted"]

#: A trusted proxy network, as :func:`parse_trusted` returns them.
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
#: A parsed client or proxy address.
IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


class RateLimiter:
    """Token buckets keyed by string (a key id, or a client address), bounded in memory.

    Each name has a bucket that holds up to ``burst`` tokens and refills at ``rate`` tokens a
    second; a request takes ``cost`` tokens or, if they are not there, is refused with the time
    to wait. A name seen for the first time starts with a full bucket.

    At most ``max_tracked`` buckets are kept. When a new name would pass that, the least
    recently used bucket is forgotten, and if that name comes back it starts full again. That
    errs in the safe direction for a limiter of abuse: forgetting can only let a client through
    sooner, never refuse one that is within its limit, and memory stays bounded however many
    addresses or keys an attacker rotates through. A bucket that has been idle for
    ``burst / rate`` seconds is full anyway, so forgetting it loses nothing; size
    ``max_tracked`` above the number of names active within that time and eviction is exact.

    Time is passed in by the caller (``time.monotonic()`` in the gateway) so that the limiter
    is deterministic and testable. Not thread-safe: use one per event loop.
    """

    def __init__(self, rate: float, burst: float, *, max_tracked: int = 100_000) -> None:
        """Create the limiter.

        Args:
            rate: Tokens added to each bucket per second; must be positive and finite.
            burst: The capacity of each bucket, the most requests allowed at once; must be at
                least 1 (else a request of cost 1 could never pass) and finite.
            max_tracked: The most buckets kept in memory; at least 1.

        Raises:
            ValueError: If an argument is out of range.
        """
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")
        if not (burst >= 1 and math.isfinite(burst)):
            raise ValueError(f"burst must be a number of tokens >= 1, got {burst!r}")
        if max_tracked < 1:
            raise ValueError(f"max_tracked must be >= 1, got {max_tracked!r}")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_tracked = max_tracked
        # name -> (tokens, time they were counted); order is least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        """How many buckets are tracked now."""
        return len(self._buckets)

    def _refilled(self, tokens: float, since: float, now: float) -> float:
        # A clock that steps back (callers on different clocks) adds nothing rather than
        # taking tokens away.
        return min(self.burst, tokens + max(0.0, now - since) * self.rate)

    def take(self, name: str, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``name``'s bucket if they are there.

        Args:
            name: Whose bucket: a key id or a client address.
            now: The current time in seconds, from a clock that does not step back.
            cost: How many tokens the request costs; between 0 and ``burst``.

        Returns:
            ``0.0`` if the request is allowed (the tokens are taken). Otherwise the seconds to
            wait until ``cost`` tokens will be there, the ``Retry-After``; nothing is taken.
            A call at exactly ``now + wait`` is allowed if nothing else was taken meanwhile.

        Raises:
            ValueError: If ``now`` is not finite, or ``cost`` is negative, not a number, or more
                than ``burst`` (such a request could never pass, and waiting would not help).
        """
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite number of seconds, got {now!r}")
        if not (0.0 <= cost <= self.burst):
            raise ValueError(f"cost must be between 0 and burst={self.burst}, got {cost!r}")
        bucket = self._buckets.get(name)
        if bucket is None:
            tokens, since = self.burst, now
            if len(self._buckets) >= self.max_tracked:
                self._buckets.popitem(last=False)
        else:
            tokens = self._refilled(*bucket, now)
            since = max(bucket[1], now)
            self._buckets.move_to_end(name)
        if tokens >= cost:
            self._buckets[name] = (tokens - cost, since)
            return 0.0
        self._buckets[name] = (tokens, since)
        wait = (cost - tokens) / self.rate
        # Floating-point rounding in `start + wait` can leave the refill a hair short of `cost`;
        # lengthen the wait until a call then is sure to pass. After the clock stepped back, the
        # wait counts from the bucket's own time, as though the step had not happened.
        start = max(now, since)
        while wait <= 0.0 or self._refilled(tokens, since, start + wait) < cost:
            wait += max(math.ulp(start + wait), math.ulp(wait))
        return wait


#: The longest entry that can hold an address: "[ffff:...:255.255.255.255]:65535" is 53.
_LONGEST_ENTRY = 64


def _parse_address(text: str) -> IPAddress | None:
    """An IP address from one ``X-Forwarded-For`` entry, or ``None`` if it is not one.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:5678``. An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``, what a dual-stack
    socket reports) is read as the IPv4 address and an IPv6 zone is dropped, so that each
    client has one spelling.
    """
    text = text.strip()
    if len(text) > _LONGEST_ENTRY:
        return None  # not an address, and not worth parsing however long it is
    bracketed = text.startswith("[")
    if bracketed:
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and _is_port(rest[1:]))):
            return None
        text = host
    elif text.count(":") == 1:  # IPv4 with a port; an IPv6 address has two colons or more
        host, _, port = text.partition(":")
        if not _is_port(port):
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if bracketed and not isinstance(address, ipaddress.IPv6Address):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            # A zone ("%eth0") means nothing beyond this host; without it, one client is one key.
            return ipaddress.IPv6Address(int(address))
    return address


def _is_port(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit() and int(text) <= 65535


def _is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    # `in` is False when the versions differ, so v4 and v6 networks can be mixed.
    return any(address in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> str:
    """The address of the client a request comes from, for rate limits and logs.

    ``X-Forwarded-For`` can be written by anyone, so it is believed only as far as it was
    written by trusted proxies: only when the socket's peer is a trusted proxy, and then read
    from the right (the entry the nearest proxy appended) leftwards, skipping proxies that are
    themselves trusted. The first untrusted address is the client; everything to its left was
    sent by that client and may be forged.

    Args:
        peer: The socket's peer address (``request.client.host``), or ``None`` when there is
            none (a Unix socket), which gives ``"unknown"``.
        forwarded_for: The ``X-Forwarded-For`` value; several headers joined with ``","``.
        trusted: The networks of trusted proxies, from :func:`parse_trusted`.

    Returns:
        The client's address, in canonical form when it is an IP address. If every entry is
        trusted, the leftmost one (or the peer when the header is absent or empty). An entry
        that is not an IP address (``unknown``, garbage) stops the walk: the last valid
        address seen, or the peer, is the answer. Never raises, whatever the header holds.
    """
    if peer is None:
        return "unknown"
    if not forwarded_for:  # a direct request: the common case, answered from a memo
        return _canonical_peer(peer)
    peer_address = _parse_address(peer)
    if peer_address is None:
        return peer
    if not _is_trusted(peer_address, trusted):
        return str(peer_address)
    last_seen = peer_address
    for entry in reversed(forwarded_for.split(",")):
        if not entry.strip():
            continue  # what joining an empty header leaves behind carries no information
        address = _parse_address(entry)
        if address is None:
            break
        if not _is_trusted(address, trusted):
            return str(address)
        last_seen = address
    return str(last_seen)


@functools.lru_cache(maxsize=4096)
def _canonical_peer(peer: str) -> str:
    """``peer`` in canonical form; memoised, since parsing an address costs more than a request's
    other checks together and a busy gateway sees the same peers again and again."""
    address = _parse_address(peer)
    return peer if address is None else str(address)


def parse_trusted(spec: str) -> list[IPNetwork]:
    """Parse the trusted proxies setting, e.g. ``"10.0.0.0/8, 127.0.0.1, ::1"``.

    Args:
        spec: Comma-separated IP networks (CIDR) or single addresses; empty means none,
            so ``X-Forwarded-For`` is never believed.

    Returns:
        The networks, in the order given. A network written with host bits set
        (``10.1.2.3/8``) means the network it lies in.

    Raises:
        ValueError: If an entry is not an IP address or network, naming it.
    """
    networks: list[IPNetwork] = []
    for entry in spec.split(","):
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is neither an IP address nor a network") from None
    return networks
