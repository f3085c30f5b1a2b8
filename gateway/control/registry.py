"""Projects and their keys: created by the CLI, stored hashed, looked up on every request.

The registry is the control plane's ``projects``, ``keys`` and ``email_secrets`` tables
(:mod:`.tables`; and each project's privacy policy, for the scrubber ingest runs), in the data
directory's ``registry.sqlite3`` or in the PostgreSQL every replica shares (:mod:`.db`), written
only by ``voxloop-gateway init | projects | keys | email-secret`` and read by the gateway. Keys
are 32
random bytes, so one SHA-256 of the key is a safe stored form (nothing to brute-force) and a
cheap lookup. Three kinds: a site key (``pk_``) writes from web pages and apps, a server key
(``sk_``) writes and reads stats from servers, a read key (``rk_``) reads within its channels
and forms (:meth:`Key.scope`) and never writes.

A running gateway keeps the registry in memory and reloads it whenever the file has changed (one
``stat`` per turn of its event loop, shared by the requests of that turn), so keys created or
revoked with the CLI take effect at once, no restart; and every ``RELOAD_SECONDS`` regardless,
in case two writes fell in one tick of the file's clock.
On PostgreSQL it rereads the tables every second (:data:`PG_RELOAD_SECONDS`), off the request's
path, so a revocation reaches every replica within about a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import Insert, Table, Update, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import BUILTIN_CHANNELS, CHANNEL_PATTERN, FORM_PATTERN, MAX_FORM_CHARS

from ..errors import ConfigError
from ..privacy.policy import DEFAULT, policy_of_row, scrubber_of, write_policy_in
from ..privacy.scrub import Scrubber
from . import schema
from .access import Scope
from .db import Database
from .tables import email_secrets, keys, privacy_policies, projects

KeyKind = Literal["site", "server", "read"]
RELOAD_SECONDS: Final = 5.0
#: How often a gateway on PostgreSQL rereads the registry (it can't stat a file).
PG_RELOAD_SECONDS: Final = 1.0
_PREFIX: Final[dict[str, KeyKind]] = {"pk_": "site", "sk_": "server", "rk_": "read"}
#: What each kind of key begins with: it says the kind before any lookup.
PREFIXES: Final[dict[KeyKind, str]] = {kind: prefix for prefix, kind in _PREFIX.items()}
#: Project and channel names: the core's channel rule (they name files, partitions, URL parts).
NAME_RULE: Final = re.compile(CHANNEL_PATTERN)
#: Form names, as the core takes them in events.
FORM_RULE: Final = re.compile(FORM_PATTERN)
#: The length of a key's public id (``pk_`` and 8 characters) and of an email secret's id.
ID_LENGTH: Final = 11


class Project(msgspec.Struct, frozen=True):
    """A tenant: its id, the secret keying its dedup hashes and pseudonyms, its channels.

    ``scrubber`` is its privacy policy's (:func:`..privacy.policy.scrubber_of`), None when the
    policy keeps comments as they came; ingest runs it on every comment before it is stored.
    """

    id: str
    secret: bytes
    channels: frozenset[str]
    scrubber: Scrubber | None = None

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
    """What a key may do. ``id`` is the public part shown by ``keys list`` (never the key).

    ``forms`` narrows a read key to some forms (None: all of them); other kinds have None.
    """

    id: str
    project: str
    kind: KeyKind
    channels: frozenset[str]
    origins: frozenset[str]
    revoked: bool = False
    forms: frozenset[str] | None = None

    def scope(self) -> Scope:
        """The part of its project the key reaches: its channels, and its forms if narrowed."""
        return Scope(self.project, self.channels, self.forms)


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
    if not NAME_RULE.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r} must be 1-64 characters of a-z 0-9 _ -,"
            " starting with a letter or digit"
        )
    return name


def check_form(form: str) -> str:
    """Refuse a form name no event can carry (the core's form rule)."""
    if not FORM_RULE.fullmatch(form):
        raise ConfigError(
            f"form {form!r} must be 1-{MAX_FORM_CHARS} characters of A-Z a-z 0-9 . _ -"
        )
    return form


def check_origin(origin: str) -> str:
    """An allowed origin is ``scheme://host[:port]``, as browsers send it in ``Origin``."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ConfigError(f"origin {origin!r} must look like https://shop.example.com[:port]")
    return f"{parts.scheme}://{parts.netloc}".lower()


class _Snapshot(msgspec.Struct, frozen=True):
    """Everything :meth:`Registry.load` reads, taken in one transaction."""

    projects: dict[str, Project]
    keys: dict[bytes, Key]
    email_secrets: dict[str, list[EmailSecret]]


class Registry:
    """The projects, keys and email signing secrets of a data directory or a PostgreSQL."""

    def __init__(self, data_dir: Path, store: str = "sqlite") -> None:
        #: Where the rows live; ``db.where`` names it in messages.
        self.db = Database(data_dir, store)
        self._projects: dict[str, Project] = {}
        self._keys: dict[bytes, Key] = {}
        #: The keys sent and found since the last load, by what was sent: a key's hash costs
        #: about as much as the rest of its check, and a sender sends the same key every time.
        self._found: dict[str, tuple[Key, Project]] = {}
        self._email_secrets: dict[str, list[EmailSecret]] = {}
        #: The origins some active site key allows, for CORS.
        self._site_origins: frozenset[str] = frozenset()
        #: The built-in channels and every project's, as last loaded.
        self._channels: frozenset[str] = frozenset(BUILTIN_CHANNELS)
        self._reloading: concurrent.futures.Future[_Snapshot] | None = None
        self._version: object = None
        self._loaded_at = float("-inf")
        self._checked = False
        #: The event loop whose current turn already looked for a change, and what it found.
        self._turn: asyncio.AbstractEventLoop | None = None
        self._turn_version: object = None

    # --- writes, from the CLI ------------------------------------------------------------

    def create_project(self, project_id: str, channels: Iterable[str] = ()) -> Project:
        """Add a project with the built-in channels plus ``channels``, and a fresh secret.

        It gets the privacy policy of a new project (:data:`..privacy.policy.DEFAULT`: comments
        scrubbed) in the same transaction, so no comment of it is ever stored unscrubbed.
        """
        check_name("project", project_id)
        names = frozenset(BUILTIN_CHANNELS) | {check_name("channel", c) for c in channels}
        project = Project(project_id, secrets.token_bytes(32), names, scrubber_of(DEFAULT))
        self._check_schema()

        async def write(conn: AsyncConnection) -> None:
            now_ms = _now_ms()
            await conn.execute(
                insert(projects).values(
                    id=project.id,
                    secret=project.secret,
                    channels=json.dumps(sorted(names)),
                    created_ms=now_ms,
                )
            )
            await write_policy_in(conn, project.id, DEFAULT, now_ms)

        try:
            self.db.run(write, write=True)
        except IntegrityError:
            raise ConfigError(f"project {project_id!r} already exists") from None
        return project

    def create_key(
        self,
        project_id: str,
        kind: KeyKind,
        channels: Sequence[str] = (),
        origins: Sequence[str] = (),
        forms: Sequence[str] = (),
    ) -> tuple[str, Key]:
        """Make a key; returns it (shown once, never stored) and what it may do.

        A site key names its channels (default: ``web``) and the origins allowed to use it.
        A server key may write every channel of its project and read stats; it takes neither.
        A read key reads the channels given (default: all) and the forms given (default: all),
        from servers and BI tools: it takes no origin.
        """
        project = self.project(project_id, reload=True)
        if kind == "server" and (channels or origins):
            raise ConfigError(
                "a server key writes every channel from anywhere: no --channel/--origin"
            )
        if kind == "read" and origins:
            raise ConfigError("a read key is for servers and BI tools, not web pages: no --origin")
        if kind != "read" and forms:
            raise ConfigError("only a read key is narrowed to forms: --form needs --kind read")
        allowed = frozenset(channels or (["web"] if kind == "site" else project.channels))
        unknown = sorted(allowed - project.channels)
        if unknown:
            raise ConfigError(
                f"project {project_id!r} has no channel {', '.join(unknown)};"
                f" its channels: {', '.join(sorted(project.channels))}"
            )
        allowed_origins = frozenset(check_origin(o) for o in origins)
        allowed_forms = frozenset(check_form(f) for f in forms) or None
        raw = PREFIXES[kind] + secrets.token_urlsafe(32)
        key = Key(raw[:ID_LENGTH], project_id, kind, allowed, allowed_origins, forms=allowed_forms)
        self._write(
            insert(keys).values(
                id=key.id,
                hash=key_hash(raw),
                project=project_id,
                kind=kind,
                channels=json.dumps(sorted(allowed)),
                origins=json.dumps(sorted(allowed_origins)),
                forms=None if allowed_forms is None else json.dumps(sorted(allowed_forms)),
                created_ms=_now_ms(),
            )
        )
        return raw, key

    def revoke_key(self, key_id: str) -> Key:
        """Revoke the key whose public id (``pk_…``/``sk_…``/``rk_…`` shown by list) is given.

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
        changed = self._write(_revoking(keys, key_id))
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
        self._write(
            insert(email_secrets).values(
                id=made.id, project=project_id, secret=made.secret, created_ms=_now_ms()
            )
        )
        return made

    def revoke_email_secret(self, secret_id: str) -> EmailSecret:
        """Revoke a signing secret: links signed with it get the "not valid" page from now on."""
        changed = self._write(_revoking(email_secrets, secret_id))
        found = {s.id: s for s in self.email_secrets()}.get(secret_id)
        if found is None:
            raise ConfigError(
                f"no email secret {shown(secret_id)}; `email-secret list` shows their ids"
            )
        if not changed:
            raise ConfigError(f"email secret {shown(secret_id)} was already revoked")
        return found

    def _write(self, statement: Insert | Update) -> int:
        """Run one statement in a transaction of its own; the rows it changed."""
        self._check_schema()

        async def write(conn: AsyncConnection) -> int:
            return (await conn.execute(statement)).rowcount

        return self.db.run(write, write=True)

    # --- reads ---------------------------------------------------------------------------

    def load(self) -> None:
        """Read every project and key into memory."""
        version = self._change()
        self._check_schema()
        self._apply(self.db.run(_read), version)

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
            name = repr(project_id) if NAME_RULE.fullmatch(project_id) else shown(project_id)
            raise ConfigError(f"no project {name}; projects: {known}")
        return found

    def authenticate(self, key: str) -> tuple[Key, Project] | None:
        """What ``key`` may do and for which project, or None if it is unknown or revoked."""
        self._refresh()
        known = self._found.get(key)
        if known is not None:
            return known
        found = self._keys.get(key_hash(key))
        if found is None or found.revoked:
            return None
        # A key read in before its project (a reload between the two tables' reads) waits
        # for the next reload.
        project = self._projects.get(found.project)
        if project is None:
            return None
        self._found[key] = (found, project)
        return found, project

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

    def _check_schema(self) -> None:
        if not self._checked:
            schema.prepare(self.db)
            self._checked = True

    def _change(self) -> object:
        """Something that changes when the rows may have: a reload is due when it differs."""
        if self.db.dialect == "sqlite":
            return self.db.changed_at()
        return int(time.monotonic() // PG_RELOAD_SECONDS)

    def _apply(self, snapshot: _Snapshot, version: object) -> None:
        self._projects, self._keys = snapshot.projects, snapshot.keys
        self._found = {}
        self._email_secrets = snapshot.email_secrets
        self._site_origins = frozenset(
            origin
            for key in snapshot.keys.values()
            if key.kind == "site" and not key.revoked
            for origin in key.origins
        )
        self._channels = frozenset(BUILTIN_CHANNELS).union(
            *(p.channels for p in snapshot.projects.values())
        )
        self._version = version
        self._loaded_at = time.monotonic()

    def _turn_change(self) -> object:
        """:meth:`_change`, looked for once per turn of the running event loop.

        The requests one turn runs came in together, and a ``stat`` costs about as much as the
        rest of a key's check: it is made for the first of them only. Every request still sees
        a change finished before its turn began (a revocation holds from the next request on);
        outside an event loop (the CLI), every call looks.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._change()
        if self._turn is not loop:
            self._turn, self._turn_version = loop, self._change()
            loop.call_soon(self._end_turn)
        return self._turn_version

    def _end_turn(self) -> None:
        self._turn = None

    def _refresh(self) -> None:
        version = self._turn_change()
        if version == self._version and time.monotonic() - self._loaded_at <= RELOAD_SECONDS:
            return
        if self.db.dialect == "sqlite":
            self.load()  # a local file: a millisecond
        elif self._reloading is None or self._reloading.done():
            # Over the network, off the request's path: requests go on with what was last read,
            # also while PostgreSQL is away (the stores then answer 503 on their own).
            self._reloading = self.db.submit(_read)
            self._reloading.add_done_callback(lambda done: self._reloaded(done, version))

    def _reloaded(self, done: concurrent.futures.Future[_Snapshot], version: object) -> None:
        try:
            self._apply(done.result(), version)
        except Exception as exc:  # PostgreSQL away, slow or restarting: keep what was read
            self._loaded_at = time.monotonic()  # try again after RELOAD_SECONDS
            self._version = version
            logging.getLogger(__name__).warning("registry not reloaded: %s", exc)

    def close(self) -> None:
        """Release the registry's connections; it reconnects if used again."""
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
        """``site``, ``server`` or ``read`` from a key's prefix, None for anything else."""
        return _PREFIX.get(key[:3])


async def _read(conn: AsyncConnection) -> _Snapshot:
    """Every project, key and email secret, in one transaction."""
    found = await conn.execute(select(projects.c.id, projects.c.secret, projects.c.channels))
    policies = {
        project: scrubber_of(policy_of_row(scrub, patterns, days, mode))
        for project, scrub, patterns, days, mode in await conn.execute(
            select(
                privacy_policies.c.project,
                privacy_policies.c.scrub,
                privacy_policies.c.patterns,
                privacy_policies.c.retention_days,
                privacy_policies.c.retention_mode,
            )
        )
    }
    default = scrubber_of(DEFAULT)
    read_projects = {
        pid: Project(pid, bytes(secret), frozenset(json.loads(chans)), policies.get(pid, default))
        for pid, secret, chans in found
    }
    found_keys = await conn.execute(
        select(
            keys.c.id,
            keys.c.hash,
            keys.c.project,
            keys.c.kind,
            keys.c.channels,
            keys.c.origins,
            keys.c.revoked_ms,
            keys.c.forms,
        )
    )
    read_keys = {
        bytes(digest): Key(
            kid,
            project,
            kind,
            frozenset(json.loads(chans)),
            frozenset(json.loads(origins)),
            revoked is not None,
            None if forms is None else frozenset(json.loads(forms)),
        )
        for kid, digest, project, kind, chans, origins, revoked, forms in found_keys
    }
    signing: dict[str, list[EmailSecret]] = {}
    found_secrets = await conn.execute(
        select(
            email_secrets.c.id,
            email_secrets.c.project,
            email_secrets.c.secret,
            email_secrets.c.revoked_ms,
        ).order_by(email_secrets.c.created_ms)
    )
    for sid, project, secret, revoked in found_secrets:
        signing.setdefault(project, []).append(
            EmailSecret(sid, project, bytes(secret), revoked is not None)
        )
    return _Snapshot(read_projects, read_keys, signing)


def _revoking(table: Table, row_id: str) -> Update:
    """Revoke the row ``row_id`` of ``table`` now, unless it was already."""
    return (
        update(table)
        .where(table.c.id == row_id, table.c.revoked_ms.is_(None))
        .values(revoked_ms=_now_ms())
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
