"""Projects and their keys: created by the CLI, stored hashed, looked up on every request.

The registry is one small SQLite file in the data directory (``registry.sqlite3``), or tables
in PostgreSQL that every replica shares (see :mod:`.registry_db`), written only by
``voxloop-gateway init | projects | keys | email-secret`` and read by the gateway. Keys are 32
random bytes, so one SHA-256 of the key is a safe stored form (nothing to brute-force) and a
cheap lookup.

A running gateway keeps the registry in memory and reloads it whenever the file has changed (one
``stat`` a request), so keys created or revoked with the CLI take effect at once, no restart; and
every ``RELOAD_SECONDS`` regardless, in case two writes fell in one tick of the file's clock.
On PostgreSQL it rereads the tables every second, so a revocation reaches every replica within
about a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import msgspec

from voxloop_core import BUILTIN_CHANNELS

from .errors import ConfigError
from .registry_db import Duplicate, PostgresRegistryDb, RegistryDb, SqliteRegistryDb

KeyKind = Literal["site", "server"]
RELOAD_SECONDS: Final = 5.0
_PREFIX: Final[dict[str, KeyKind]] = {"pk_": "site", "sk_": "server"}
#: What a project or channel name is made of.
NAME_RULE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_NAME: Final = NAME_RULE
#: The length of a key's public id (``pk_`` and 8 characters) and of an email secret's id.
ID_LENGTH: Final = 11


class Project(msgspec.Struct, frozen=True):
    """A tenant: its id, the secret keying its dedup hashes and pseudonyms, its channels."""

    id: str
    secret: bytes
    channels: frozenset[str]

    def __repr__(self) -> str:  # never the secret, wherever a project gets printed
        return f"Project({self.id!r}, channels={sorted(self.channels)!r})"


class EmailSecret(msgspec.Struct, frozen=True):
    """A secret that signs a project's email rating links; ``id`` names it in the CLI."""

    id: str
    project: str
    secret: bytes
    revoked: bool = False

    def __repr__(self) -> str:  # never the secret
        return f"EmailSecret({self.id!r}, project={self.project!r}, revoked={self.revoked})"


class Key(msgspec.Struct, frozen=True):
    """What a key may do. ``id`` is the public part shown by ``keys list`` (never the key)."""

    id: str
    project: str
    kind: KeyKind
    channels: frozenset[str]
    origins: frozenset[str]
    revoked: bool = False


def shown(text: str) -> str:
    """``text`` as a message may show it: a key's public id at most, never a key or a secret.

    Public ids (``pk_AbCdEfGh``, ``es_1a2b3c4d``) and names are 11 characters or less; anything
    longer, such as a whole key pasted where an id was expected, is cut to its first 11.
    """
    return repr(text) if len(text) <= ID_LENGTH else repr(text[:ID_LENGTH]) + "…"


def key_hash(key: str) -> bytes:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).digest()


def check_name(what: str, name: str) -> str:
    """Refuse project and channel names the URL, the files and the CLI can't all carry."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r} must be 1-64 characters of a-z 0-9 _ -,"
            " starting with a letter or digit"
        )
    return name


def check_origin(origin: str) -> str:
    """An allowed origin is ``scheme://host[:port]``, as browsers send it in ``Origin``."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ConfigError(f"origin {origin!r} must look like https://shop.example.com[:port]")
    return f"{parts.scheme}://{parts.netloc}".lower()


class Registry:
    """The projects, keys and email signing secrets of a data directory or a PostgreSQL."""

    def __init__(self, data_dir: Path, store: str = "sqlite") -> None:
        self.db: RegistryDb = (
            SqliteRegistryDb(data_dir) if store == "sqlite" else PostgresRegistryDb(store)
        )
        self._projects: dict[str, Project] = {}
        self._keys: dict[bytes, Key] = {}
        self._email_secrets: dict[str, list[EmailSecret]] = {}
        #: The origins some active site key allows, for CORS.
        self._site_origins: frozenset[str] = frozenset()
        #: The built-in channels and every project's, as last loaded.
        self._channels: frozenset[str] = frozenset(BUILTIN_CHANNELS)
        self._reloading: threading.Thread | None = None
        self._version: object = None
        self._loaded_at = float("-inf")

    # --- writes, from the CLI ------------------------------------------------------------

    def create_project(self, project_id: str, channels: Iterable[str] = ()) -> Project:
        """Add a project with the built-in channels plus ``channels``, and a fresh secret."""
        check_name("project", project_id)
        names = frozenset(BUILTIN_CHANNELS) | {check_name("channel", c) for c in channels}
        project = Project(project_id, secrets.token_bytes(32), names)
        try:
            self.db.write(
                "INSERT INTO projects VALUES (?, ?, ?, ?)",
                (project.id, project.secret, json.dumps(sorted(names)), _now_ms()),
            )
        except Duplicate:
            raise ConfigError(f"project {project_id!r} already exists") from None
        return project

    def create_key(
        self,
        project_id: str,
        kind: KeyKind,
        channels: Sequence[str] = (),
        origins: Sequence[str] = (),
    ) -> tuple[str, Key]:
        """Make a key; returns it (shown once, never stored) and what it may do.

        A site key names its channels (default: ``web``) and the origins allowed to use it.
        A server key may write every channel of its project and read stats; it takes neither.
        """
        project = self.project(project_id, reload=True)
        if kind == "server" and (channels or origins):
            raise ConfigError(
                "a server key writes every channel from anywhere: no --channel/--origin"
            )
        allowed = frozenset(channels or (["web"] if kind == "site" else project.channels))
        unknown = sorted(allowed - project.channels)
        if unknown:
            raise ConfigError(
                f"project {project_id!r} has no channel {', '.join(unknown)};"
                f" its channels: {', '.join(sorted(project.channels))}"
            )
        allowed_origins = frozenset(check_origin(o) for o in origins)
        prefix = "pk_" if kind == "site" else "sk_"
        raw = prefix + secrets.token_urlsafe(32)
        key = Key(raw[:ID_LENGTH], project_id, kind, allowed, allowed_origins)
        self.db.write(
            "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                key.id,
                key_hash(raw),
                project_id,
                kind,
                json.dumps(sorted(allowed)),
                json.dumps(sorted(allowed_origins)),
                _now_ms(),
            ),
        )
        return raw, key

    def revoke_key(self, key_id: str) -> Key:
        """Revoke the key whose public id (``pk_…``/``sk_…`` prefix shown by list) is given.

        The whole key does as well (a leaked key pasted as it was found); messages show only
        its id.
        """
        if len(key_id) > ID_LENGTH:
            self.load()
            whole = self._keys.get(key_hash(key_id))
            if whole is None:
                raise ConfigError(
                    f"no key {shown(key_id)}; `voxloop-gateway keys list` shows their ids"
                )
            key_id = whole.id
        changed = self.db.write(
            "UPDATE keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
            (_now_ms(), key_id),
        )
        found = {k.id: k for k in self.keys()}.get(key_id)
        if found is None:
            raise ConfigError(f"no key {shown(key_id)}; `voxloop-gateway keys list` shows them")
        if not changed and found.revoked:
            raise ConfigError(f"key {shown(key_id)} was already revoked")
        return found

    def create_email_secret(self, project_id: str) -> EmailSecret:
        """Make a new signing secret for ``project_id``'s rating links (32 random bytes).

        Older secrets stay valid until revoked, so links already sent keep working through a
        rotation.
        """
        self.project(project_id, reload=True)
        made = EmailSecret("es_" + secrets.token_hex(4), project_id, secrets.token_bytes(32))
        self.db.write(
            "INSERT INTO email_secrets VALUES (?, ?, ?, ?, NULL)",
            (made.id, project_id, made.secret, _now_ms()),
        )
        return made

    def revoke_email_secret(self, secret_id: str) -> EmailSecret:
        """Revoke a signing secret: links signed with it get the "not valid" page from now on."""
        changed = self.db.write(
            "UPDATE email_secrets SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
            (_now_ms(), secret_id),
        )
        found = {s.id: s for s in self.email_secrets()}.get(secret_id)
        if found is None:
            raise ConfigError(
                f"no email secret {shown(secret_id)}; `email-secret list` shows their ids"
            )
        if not changed:
            raise ConfigError(f"email secret {shown(secret_id)} was already revoked")
        return found

    # --- reads ---------------------------------------------------------------------------

    def load(self) -> None:
        """Read every project and key into memory."""
        version = self.db.version()
        projects = {
            pid: Project(pid, bytes(secret), frozenset(json.loads(chans)))
            for pid, secret, chans in self.db.read("SELECT id, secret, channels FROM projects")
        }
        keys = {
            bytes(digest): Key(
                kid,
                project,
                kind,
                frozenset(json.loads(chans)),
                frozenset(json.loads(origins)),
                revoked is not None,
            )
            for kid, digest, project, kind, chans, origins, revoked in self.db.read(
                "SELECT id, hash, project, kind, channels, origins, revoked_ms FROM keys"
            )
        }
        signing: dict[str, list[EmailSecret]] = {}
        for sid, project, secret, revoked in self.db.read(
            "SELECT id, project, secret, revoked_ms FROM email_secrets ORDER BY created_ms"
        ):
            signing.setdefault(project, []).append(
                EmailSecret(sid, project, bytes(secret), revoked is not None)
            )
        self._projects, self._keys, self._email_secrets = projects, keys, signing
        self._site_origins = frozenset(
            origin
            for key in keys.values()
            if key.kind == "site" and not key.revoked
            for origin in key.origins
        )
        self._channels = frozenset(BUILTIN_CHANNELS).union(*(p.channels for p in projects.values()))
        self._version = version
        self._loaded_at = time.monotonic()

    def projects(self) -> list[Project]:
        """Every project, by id."""
        self.load()
        return sorted(self._projects.values(), key=lambda p: p.id)

    def keys(self, project_id: str | None = None) -> list[Key]:
        """Every key (of ``project_id`` when given), revoked ones included, by project and id."""
        self.load()
        found = [k for k in self._keys.values() if project_id in (None, k.project)]
        return sorted(found, key=lambda k: (k.project, k.id))

    def project(self, project_id: str, *, reload: bool = False) -> Project:
        """The project ``project_id``; ConfigError naming the known ones if there is none."""
        if reload:
            self.load()
        found = self._projects.get(project_id)
        if found is None:
            known = ", ".join(sorted(self._projects)) or "none yet: `voxloop-gateway init`"
            # A name is shown whole; anything else (a key given for a project) is cut short.
            name = repr(project_id) if _NAME.fullmatch(project_id) else shown(project_id)
            raise ConfigError(f"no project {name}; projects: {known}")
        return found

    def authenticate(self, key: str) -> tuple[Key, Project] | None:
        """What ``key`` may do and for which project, or None if it is unknown or revoked."""
        self._refresh()
        found = self._keys.get(key_hash(key))
        if found is None or found.revoked:
            return None
        # A key read in before its project (a reload between the two tables' reads) waits
        # for the next reload.
        project = self._projects.get(found.project)
        return None if project is None else (found, project)

    def email_secrets(self, project_id: str | None = None) -> list[EmailSecret]:
        """Every email signing secret (of ``project_id`` when given), revoked ones included."""
        self.load()
        return [
            s
            for project, found in sorted(self._email_secrets.items())
            if project_id in (None, project)
            for s in found
        ]

    def signing_secrets(self, project_id: str) -> list[bytes]:
        """The secrets that may have signed a rating link of ``project_id``, newest first."""
        self._refresh()
        return [
            s.secret for s in reversed(self._email_secrets.get(project_id, [])) if not s.revoked
        ]

    def project_of(self, project_id: str) -> Project | None:
        """The project ``project_id`` as last loaded, or None (a per-request lookup)."""
        self._refresh()
        return self._projects.get(project_id)

    def _refresh(self) -> None:
        if (
            self.db.version() == self._version
            and time.monotonic() - self._loaded_at <= RELOAD_SECONDS
        ):
            return
        if not isinstance(self.db, PostgresRegistryDb):
            self.load()  # a local file: a millisecond
        elif self._reloading is None or not self._reloading.is_alive():
            # Over the network, off the request's path: requests go on with what was last read,
            # also while PostgreSQL is away (the stores then answer 503 on their own).
            self._reloading = threading.Thread(target=self._load_quietly, daemon=True)
            self._reloading.start()

    def _load_quietly(self) -> None:
        try:
            self.load()
        except Exception as exc:  # PostgreSQL away, slow or restarting: keep what was read
            self._loaded_at = time.monotonic()  # try again after RELOAD_SECONDS
            self._version = self.db.version()
            logging.getLogger(__name__).warning("registry not reloaded: %s", exc)

    def close(self) -> None:
        """Release the registry's connection (PostgreSQL); it reconnects if used again."""
        self.db.close()

    def site_origin_allowed(self, origin: str) -> bool:
        """Whether an active site key allows ``origin`` (lower case), for a CORS preflight.

        Fresh as :meth:`authenticate` is: a key the CLI just made or revoked counts at once on
        SQLite, within about a second on PostgreSQL.
        """
        self._refresh()
        return origin in self._site_origins

    def channels(self) -> frozenset[str]:
        """The built-in channels and every project's, as last loaded (no reload: for metrics)."""
        return self._channels

    @staticmethod
    def kind_of(key: str) -> KeyKind | None:
        """``site`` or ``server`` from a key's prefix, None for anything else."""
        return _PREFIX.get(key[:3])


def _now_ms() -> int:
    return int(time.time() * 1000)
