"""The gateway's settings: read once, from CLI flags then ``VOXLOOP_*`` variables, validated."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

import msgspec

from .errors import ConfigError

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
DEFAULT_DATA_DIR: Final = "data"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a gateway process is told, with the defaults a single machine wants.

    Attributes:
        host: address to bind (loopback by default: expose it through a proxy on purpose).
        port: TCP port.
        data_dir: where the registry and the channel stores live.
        synchronous: SQLite's ``synchronous`` for the stores. ``FULL`` (default): a 202 survives
            power loss. ``NORMAL``: it survives a process crash, the last commits may not survive
            power loss.
        max_body: largest request body in bytes, after decompression.
        max_pending: records queued for commit per store before new writes get 503.
        dedup_entries, dedup_age_s: the in-memory window of recent keys in front of the stores.
        key_rate, key_burst: requests per second (sustained, burst) each key may make.
        address_rate, address_burst: the same per client address.
        trusted_proxies: proxies whose ``X-Forwarded-For`` names the client.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    max_body: int = 1024 * 1024
    max_pending: int = 50_000
    dedup_entries: int = 1_000_000
    dedup_age_s: int = 7 * 86_400
    key_rate: float = 2_000.0
    key_burst: float = 4_000.0
    address_rate: float = 50.0
    address_burst: float = 200.0
    trusted_proxies: tuple[Network, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0-65535, got {self.port}")
        if self.max_body < 1024:
            raise ConfigError(f"max_body must be at least 1024 bytes, got {self.max_body}")
        for name in ("max_pending", "dedup_entries", "dedup_age_s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("key_rate", "key_burst", "address_rate", "address_burst"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be above 0, got {getattr(self, name)}")


#: setting name -> (environment variable, how to read its text)
_FROM_TEXT: Final = {
    "host": str,
    "port": int,
    "data_dir": Path,
    "synchronous": str.upper,
    "max_body": int,
    "max_pending": int,
    "dedup_entries": int,
    "dedup_age_s": int,
    "key_rate": float,
    "key_burst": float,
    "address_rate": float,
    "address_burst": float,
}


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` -> networks; ConfigError naming a bad entry."""
    found = []
    for entry in (e.strip() for e in spec.split(",")):
        if entry:
            try:
                found.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(f"trusted proxy {entry!r} is not an address or network") from None
    return tuple(found)


def load_settings(
    flags: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from CLI ``flags`` (None = not given), then ``VOXLOOP_<NAME>``, then defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, read in _FROM_TEXT.items():
        flag = flags.get(name)
        text = environ.get(f"VOXLOOP_{name.upper()}")
        if flag is not None:
            values[name] = read(flag) if isinstance(flag, str) else flag  # type: ignore[operator]
        elif text:
            try:
                values[name] = read(text)  # type: ignore[operator]
            except ValueError:
                raise ConfigError(
                    f"VOXLOOP_{name.upper()}={text!r} is not a valid {name}"
                ) from None
    proxies = flags.get("trusted_proxies") or environ.get("VOXLOOP_TRUSTED_PROXIES", "")
    values["trusted_proxies"] = parse_networks(str(proxies))
    if values.get("synchronous", "FULL") not in ("FULL", "NORMAL"):
        raise ConfigError(f"synchronous must be FULL or NORMAL, got {values['synchronous']!r}")
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
