"""The gateway's settings: read once, from CLI flags then ``VOXLOOP_*`` variables, validated."""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple
from urllib.parse import unquote

import msgspec

from .errors import ConfigError
from .http.limits import parse_trusted
from .stores.sqlite import DEFAULT_BUSY_TIMEOUT_MS

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
DEFAULT_DATA_DIR: Final = "data"
#: The time from a stop signal to the exit: the drain, the requests in flight, the last commits.
SHUTDOWN_SECONDS: Final = 10
#: The longest drain that still leaves in-flight requests and the last commits their time.
MAX_DRAIN_SECONDS: Final = 6.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Rule(NamedTuple):
    """How one setting is read from text, and what it must be.

    Attributes:
        read: text (a flag or a variable) -> value; raises ValueError when it can't.
        must_be: the rule, in words, for the error message and the flag's help.
        holds: whether a value follows the rule.
    """

    read: Callable[[str], Any]
    must_be: str
    holds: Callable[[Any], bool]


def _always(value: object) -> bool:
    return True


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` -> networks (``limits.parse_trusted``); ConfigError if bad."""
    try:
        return tuple(parse_trusted(spec))
    except ValueError as exc:
        must_be = RULES["trusted_proxies"].must_be
        raise ConfigError(f"trusted_proxies must be {must_be}; {exc}") from None


#: What a store URL's parameter that may hold a secret has in its name: ``password``,
#: ``passfile``, ``sslpassword``, ``sslkey``, ``client_secret``...
_SECRET_NAMES: Final = ("pass", "secret", "key")
_MASK: Final = "***"
#: ``name=value`` in a URL's query or a ``key=value`` connection string; a value may be quoted.
_PARAMETER: Final = re.compile(r"([^\s&;?=#'\"]+)=('(?:[^'\\]|\\.)*'?|\"[^\"]*\"?|[^\s&;#]*)")


def redacted_store(url: str) -> str:
    """``url`` as a message may show it: every password and secret in it replaced by ``***``.

    The password of the user part (``user:PASSWORD@host``) and the value of every parameter
    whose name holds ``pass``, ``secret`` or ``key`` (``?password=``, ``passfile``,
    ``sslpassword``, ``sslkey``), whatever the scheme, so that a URL refused as invalid is
    shown safely too. Every message that shows a store URL shows it through this.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    user_end = rest.rfind("@")
    colon = rest.find(":")
    if 0 <= colon < user_end:  # user:password@: mask up to the last @, whatever it holds
        rest = f"{rest[:colon]}:{_MASK}{rest[user_end:]}"
    return scheme + sep + _PARAMETER.sub(_mask_parameter, rest)


def _shown(name: str, value: Any) -> Any:
    """A setting's value as a message shows it: the store's URL without its secrets, no password."""
    if name in SECRET_SETTINGS and value:
        return _MASK
    return redacted_store(value) if name == "store" and isinstance(value, str) else value


def _mask_parameter(found: re.Match[str]) -> str:
    name = unquote(found[1]).lower()
    if any(word in name for word in _SECRET_NAMES):
        return f"{found[1]}={_MASK}"
    return found[0]


#: The settings a message never shows.
SECRET_SETTINGS: Final = frozenset({"smtp_password"})
SMTP_TLS: Final = ("starttls", "tls", "none")


def _url_or_empty(value: str) -> bool:
    return value == "" or (value.startswith(("http://", "https://")) and " " not in value)


#: Every setting, in the order ``--help`` lists them: how to read it and what it must be.
RULES: Final[Mapping[str, Rule]] = {
    "host": Rule(str, "a host name or IP address", bool),
    "port": Rule(int, "an integer 0-65535", lambda v: 0 <= v <= 65535),
    "data_dir": Rule(Path, "a folder", _always),
    "store": Rule(
        str,
        "sqlite, or a postgresql:// URL",
        lambda v: v == "sqlite" or v.startswith(("postgresql://", "postgres://")),
    ),
    "pg_pool_size": Rule(int, "an integer of at least 1 (connections)", lambda v: v >= 1),
    "synchronous": Rule(str.upper, "FULL or NORMAL", lambda v: v in ("FULL", "NORMAL")),
    "max_body": Rule(int, "an integer of at least 1024 (bytes)", lambda v: v >= 1024),
    "max_pending": Rule(int, "an integer of at least 1 (records)", lambda v: v >= 1),
    "dedup_entries": Rule(int, "an integer of at least 1", lambda v: v >= 1),
    "dedup_age_s": Rule(int, "an integer of at least 1 (seconds)", lambda v: v >= 1),
    "key_rate": Rule(float, "a number above 0 (requests/s)", lambda v: v > 0),
    "key_burst": Rule(float, "a number above 0 (requests)", lambda v: v > 0),
    "address_rate": Rule(float, "a number above 0 (requests/s)", lambda v: v > 0),
    "address_burst": Rule(float, "a number above 0 (requests)", lambda v: v > 0),
    "trusted_proxies": Rule(parse_networks, "IP addresses or networks, comma-separated", _always),
    "drain_seconds": Rule(
        float,
        f"a number of seconds from 0 to {MAX_DRAIN_SECONDS:g}",
        lambda v: 0 <= v <= MAX_DRAIN_SECONDS,  # NaN fails both comparisons
    ),
    "busy_timeout_ms": Rule(int, "an integer of at least 0 (milliseconds)", lambda v: v >= 0),
    "email_edit_days": Rule(float, "a number of days of at least 0", lambda v: v >= 0),
    "audit_retention_days": Rule(
        int, "an integer of days from 1 to 36500", lambda v: 1 <= v <= 36_500
    ),
    "email_burst_seconds": Rule(float, "a number of seconds above 0", lambda v: v > 0),
    "public_url": Rule(
        lambda v: v.rstrip("/"), "an http:// or https:// URL (for links in emails)", _url_or_empty
    ),
    "webhook_allow": Rule(parse_networks, "IP addresses or networks, comma-separated", _always),
    "webhook_timeout_s": Rule(float, "a number of seconds from 1 to 60", lambda v: 1 <= v <= 60),
    "smtp_host": Rule(str, "a host name or IP address, or empty (no email)", _always),
    "smtp_port": Rule(int, "an integer 1-65535", lambda v: 1 <= v <= 65535),
    "smtp_tls": Rule(str.lower, "starttls, tls or none", lambda v: v in SMTP_TLS),
    "smtp_user": Rule(str, "a user name, or empty (no login)", _always),
    "smtp_password": Rule(str, "a password, or empty", _always),
    "mail_from": Rule(str, "an email address", lambda v: "@" in v and " " not in v.strip()),
}


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a gateway process is told, with the defaults a single machine wants.

    Attributes:
        host: address to bind (loopback by default: expose it through a proxy on purpose).
        port: TCP port.
        data_dir: where the registry and the channel stores live (SQLite).
        store: ``sqlite`` (the files in ``data_dir``), or a ``postgresql://`` URL: the
            registry and one partition per channel in that database, shared by every replica.
        pg_pool_size: most connections to PostgreSQL a gateway process opens: each busy
            channel's store keeps up to three commits in flight, and reads need their own.
        synchronous: SQLite's ``synchronous`` for the stores. ``FULL`` (default): a 202 survives
            power loss. ``NORMAL``: it survives a process crash, the last commits may not survive
            power loss.
        max_body: largest request body in bytes, after decompression.
        max_pending: records queued for commit per store before new writes get 503.
        dedup_entries, dedup_age_s: the in-memory window of recent keys in front of the stores.
        key_rate, key_burst: requests per second (sustained, burst) each key may make.
        address_rate, address_burst: the same per client address.
        trusted_proxies: proxies whose ``X-Forwarded-For`` names the client.
        drain_seconds: after SIGTERM or SIGINT, how long the gateway keeps serving while
            ``/readyz`` and new writes answer 503, so a load balancer stops sending to it
            before it stops listening.
        busy_timeout_ms: how long a commit waits for another process's lock on a store file
            before it fails and its request gets 503.
        email_edit_days: how long after the first recorded click on an email's rating links
            another click may still change the vote; later clicks are kept as history only.
        email_burst_seconds: clicks on three different scores of one email (both, for
            ``thumbs``) within this many seconds look like a link scanner: they are held
            apart as quarantined, not counted in the score.
        public_url: where people reach the dashboard (``https://cx.example.com``), for the
            links in emails; empty: ``http://host:port``.
        webhook_allow: networks webhooks may reach even though they are private, loopback or
            link-local, which the SSRF guard otherwise refuses (none by default).
        webhook_timeout_s: the longest a webhook delivery may take, connection to last byte.
        smtp_host, smtp_port, smtp_tls, smtp_user, smtp_password: the SMTP server that sends
            alerts and digests (none by default: emails wait in the outbox until one is set);
            ``smtp_tls`` is ``starttls`` (default), ``tls`` (implicit, port 465) or ``none``.
        mail_from: the sender of those emails.
        audit_retention_days: how long the audit log keeps a record: apart from the events'
            retention, so a record of an erasure outlives what it erased.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    store: str = "sqlite"
    pg_pool_size: int = 20
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
    drain_seconds: float = 2.0
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    email_edit_days: float = 7.0
    email_burst_seconds: float = 10.0
    public_url: str = ""
    webhook_allow: tuple[Network, ...] = ()
    webhook_timeout_s: float = 10.0
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str = ""
    smtp_password: str = ""
    mail_from: str = "voxloop@localhost"
    audit_retention_days: int = 730

    def __post_init__(self) -> None:
        for name, rule in RULES.items():
            value = getattr(self, name)
            if not rule.holds(value):
                raise ConfigError(f"{name} must be {rule.must_be}, got {_shown(name, value)!r}")

    @property
    def postgres(self) -> bool:
        """Whether the registry and the stores are in PostgreSQL."""
        return self.store != "sqlite"

    @property
    def base_url(self) -> str:
        """Where links in emails point: :attr:`public_url`, else this gateway's own address."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def in_flight_seconds(self) -> int:
        """How long, after the drain, requests in flight may take before they are cut off.

        What is left of SHUTDOWN_SECONDS after the drain, less a second or so for the stores
        to commit what is queued and close.
        """
        return max(1, math.floor(SHUTDOWN_SECONDS - self.drain_seconds) - 2)


def flag_name(name: str) -> str:
    """The CLI flag of setting ``name``: ``max_body`` -> ``--max-body``."""
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    """The environment variable of setting ``name``: ``max_body`` -> ``VOXLOOP_MAX_BODY``."""
    return f"VOXLOOP_{name.upper()}"


#: ``VOXLOOP_*`` variables that other parts of the project read: the build, the SDK's command
#: line, the tests, the examples and the load tests. Not gateway settings, never warned about.
OTHER_VARIABLES: Final = frozenset(
    {
        "VOXLOOP_NO_EXTENSIONS",  # setup.py and voxloop_core: the pure-Python core
        "VOXLOOP_ENDPOINT",  # the SDK's command line
        "VOXLOOP_KEY",
        "VOXLOOP_EMAIL_SECRET",  # the README's email example
        "VOXLOOP_SITE_KEY",  # the load tests
        "VOXLOOP_SERVER_KEY",
        "VOXLOOP_ORIGIN",
        "VOXLOOP_CLUSTER_RECORD",
        "VOXLOOP_TEST_PG",  # the test suite's PostgreSQL
        # argon2id's cost, read wherever passwords are hashed (the gateway and the CLI alike),
        # checked against OWASP's floor there: control/passwords.py
        "VOXLOOP_PASSWORD_COST",
    }
)
#: Families of variables other parts read, by prefix: the benchmarks', the load tests'.
OTHER_PREFIXES: Final = ("VOXLOOP_BENCH_", "VOXLOOP_LOAD_")
_PREFIX: Final = "VOXLOOP_"


def known_variable(name: str) -> bool:
    """Whether ``name`` is a variable the project reads: a setting's or another part's."""
    return (
        name in OTHER_VARIABLES
        or name.startswith(OTHER_PREFIXES)
        or any(name == env_name(setting) for setting in RULES)
    )


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``VOXLOOP_*`` variable (any case) that nothing reads: a misspelling
    names the closest known variable, anything else is said to be unknown.

    Args:
        environ: the environment; ``os.environ`` by default.
    """
    environ = os.environ if environ is None else environ
    known = sorted({env_name(setting) for setting in RULES} | OTHER_VARIABLES)
    suffixes = {name.removeprefix(_PREFIX): name for name in known}
    warnings = []
    for name in sorted(environ):
        if not name.upper().startswith(_PREFIX) or known_variable(name):
            continue
        asked = name.upper().removeprefix(_PREFIX)
        close = difflib.get_close_matches(asked, suffixes, n=1, cutoff=0.6)
        longer = [s for s in suffixes if s.startswith(asked + "_")]
        guess = close or longer
        said = f"{name} is not a voxloop variable, so it is ignored"
        if guess:
            warnings.append(f"{said}; did you mean {suffixes[guess[0]]}?")
        else:
            warnings.append(f"{said} (`voxloop-gateway serve --help` lists the settings)")
    return warnings


def load_settings(
    flags: Mapping[str, str | None], environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from CLI ``flags``, then ``VOXLOOP_<NAME>`` variables, then the defaults.

    Args:
        flags: setting name -> the flag's text, None (or absent) when not given.
        environ: the environment; ``os.environ`` by default. An empty variable counts as unset.

    Raises:
        ConfigError: one line naming the flag or variable, its value, and the rule it breaks.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, rule in RULES.items():
        text = flags.get(name)
        source = f"{flag_name(name)} {_shown(name, text)!r}"
        if text is None:
            text = environ.get(env_name(name)) or None
            source = f"{env_name(name)}={_shown(name, text)!r}"
        if text is None:
            continue
        try:
            value = rule.read(text)
            valid = rule.holds(value)
        except ConfigError as exc:  # names the bad part itself
            raise ConfigError(f"{source} is not valid: {exc}") from None
        except ValueError:
            valid = False
        if not valid:
            raise ConfigError(f"{source} is not valid: {name} must be {rule.must_be}")
        values[name] = value
    return Settings(**values)  # type: ignore[arg-type]
