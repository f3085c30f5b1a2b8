"""People who log in: users, their access groups, sessions, and the throttling of failed logins.

Written by the CLI (``voxloop-gateway users | groups``), synchronously through
:meth:`Database.run`; read by the gateway on its event loop through :meth:`Database.arun`. All of
it lives in the control plane's database, so every replica sees the same sessions and failed
logins: a logout, a disable or a password change ends sessions everywhere at once.

:class:`People` is the one entry point; groups as stored are read and checked in :mod:`.groups`,
passwords in :mod:`.passwords`. What OWASP ASVS (v4, chapters 2 and 3) asks, and where it is
done:

- Passwords follow the rules of :mod:`.passwords` and are hashed there with argon2id, off the
  event loop, and rehashed at login when the parameters have changed.
- A user made without a password gets a random one-time password that must be changed at first
  login (``must_change_password``); resetting one ends the user's sessions.
- A wrong email and a wrong password get the same 401 in the same time: an unknown email is
  checked against a dummy hash. Failed logins are counted per account (known or not, so the
  throttle tells nothing of who exists) and per address in a fixed window; past the limit a
  login is refused with a 429 and ``Retry-After`` before any hashing. A success forgets its
  account's failures only: an address's count runs out with its window, so logging in to one's
  own account between guesses at others buys nothing.
- A session is a random 256-bit token, made anew at each login and each password change
  (session fixation can't work), stored as its SHA-256 only, with a CSRF token of its own. It
  ends after :attr:`Rules.idle_ms` without use and :attr:`Rules.lifetime_ms` after login, at
  logout, and when its user is disabled. Use is written at most every :attr:`Rules.touch_ms`, so
  reads don't write on every request (idle time is thus measured to that precision).

No message, repr or log line shows a password, a hash or a token.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import msgspec
from argon2 import PasswordHasher
from sqlalchemy import and_, case, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_core import HOUR_MS

from ..errors import ApiError, ConfigError, retry_after
from . import schema
from .access import Access, Level, Scope, Section
from .db import Database, Work
from .groups import (
    Group,
    check_scope,
    checked_levels,
    custom_levels,
    known_groups,
    levels_json,
    read_access,
    read_groups,
    scope_row,
)
from .passwords import Passwords, one_time_password, password_problem
from .registry import check_name
from .tables import group_scopes, groups, login_failures, memberships, sessions, users

_T = TypeVar("_T")
MINUTE_MS: Final = 60_000
#: The longest email address SMTP carries (RFC 5321's path less its brackets).
MAX_EMAIL_CHARS: Final = 254
EMAIL_RULE: Final = re.compile(r"[^@\s]+@[^@\s]+")
#: The answer to any failed login, whatever failed: nothing tells who has an account.
WRONG_LOGIN: Final = "wrong email or password"
NO_SESSION: Final = "not logged in, or the session has ended: log in again"
#: The answer (400) to a password change whose current password is wrong.
WRONG_CURRENT: Final = "current password is wrong"
#: Random bytes of a session token and of a CSRF token.
TOKEN_BYTES: Final = 32


class Throttle(msgspec.Struct, frozen=True):
    """``failures`` failed logins within ``window_ms`` refuse further tries until it ends."""

    failures: int
    window_ms: int


class Rules(msgspec.Struct, frozen=True):
    """How long sessions last, and how many failed logins an account or an address gets."""

    idle_ms: int = 30 * MINUTE_MS
    lifetime_ms: int = 12 * HOUR_MS
    touch_ms: int = MINUTE_MS
    account: Throttle = Throttle(5, 15 * MINUTE_MS)
    #: Wider than an account's: people behind one office's address share it.
    address: Throttle = Throttle(20, 15 * MINUTE_MS)


DEFAULT_RULES: Final = Rules()


class User(msgspec.Struct, frozen=True):
    """A person who logs in, by their lower-cased email, and the groups they are in."""

    id: str
    email: str
    groups: tuple[str, ...]
    disabled: bool
    must_change_password: bool


class Session(msgspec.Struct, frozen=True):
    """A logged-in user, what they may do, and the CSRF token their forms must send back."""

    user: User
    csrf: str
    access: Access
    created_ms: int
    seen_ms: int

    def __repr__(self) -> str:  # never the CSRF token
        return f"Session({self.user.email!r}, created_ms={self.created_ms})"


def check_email(email: str) -> str:
    """``email`` lower-cased, or ConfigError saying what an email address must look like."""
    lowered = email.strip().lower()
    if len(lowered) > MAX_EMAIL_CHARS or not EMAIL_RULE.fullmatch(lowered):
        raise ConfigError(
            f"email {email!r} must look like name@example.com"
            f" (at most {MAX_EMAIL_CHARS} characters)"
        )
    return lowered


def token_hash(token: str) -> bytes:
    """The stored form of a session token: 256 random bits need no slow hash."""
    return hashlib.sha256(token.encode()).digest()


def _now_ms() -> int:
    return int(time.time() * 1000)


class People:
    """The users, access groups and sessions of a control-plane database.

    Args:
        db: the registry's database (``Registry.db``).
        rules: how long sessions last and how failed logins are throttled.
        clock: milliseconds since the epoch; tests move it instead of sleeping.
        hasher: argon2id with RFC 9106's parameters unless given.
    """

    def __init__(
        self,
        db: Database,
        *,
        rules: Rules = DEFAULT_RULES,
        clock: Callable[[], int] = _now_ms,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.db = db
        self.rules = rules
        self._clock = clock
        self.passwords = Passwords(hasher)
        self._checked = False

    # --- the CLI's side: synchronous ------------------------------------------------------

    def create_user(
        self, email: str, groups: Sequence[str], password: str | None = None
    ) -> tuple[User, str]:
        """Add a user in ``groups``; returns them and their password, to be shown once.

        Without ``password`` a one-time password is made, which the user must change at first
        login.
        """
        email = check_email(email)
        names = tuple(sorted(set(groups)))
        if not names:
            raise ConfigError(f"user {email!r} needs at least one group: --group NAME")
        if password is None:
            password, must_change = one_time_password(), True
        else:
            problem = password_problem(password, email)
            if problem:
                raise ConfigError(f"password {problem}")
            must_change = False
        digest = self.passwords.hash(password)
        user = User(secrets.token_hex(8), email, names, False, must_change)
        now = self._clock()

        async def write(conn: AsyncConnection) -> None:
            await known_groups(conn, names)
            await conn.execute(
                insert(users).values(
                    id=user.id,
                    email=email,
                    password_hash=digest,
                    must_change_password=must_change,
                    created_ms=now,
                    password_changed_ms=now,
                )
            )
            await conn.execute(
                insert(memberships), [{"user": user.id, "group": name} for name in names]
            )

        try:
            self._run(write, write=True)
        except IntegrityError:
            raise ConfigError(f"user {email!r} already exists") from None
        return user, password

    def users(self) -> list[User]:
        """Every user, disabled ones included, by email."""

        async def read(conn: AsyncConnection) -> list[User]:
            found = await conn.execute(
                select(
                    users.c.id, users.c.email, users.c.disabled_ms, users.c.must_change_password
                ).order_by(users.c.email)
            )
            rows = found.all()
            member: dict[str, list[str]] = {}
            for user_id, group in await conn.execute(select(memberships)):
                member.setdefault(user_id, []).append(group)
            return [
                User(uid, email, tuple(sorted(member.get(uid, ()))), off is not None, bool(must))
                for uid, email, off, must in rows
            ]

        return self._run(read)

    def user(self, email: str) -> User:
        """The user ``email``; ConfigError if there is none."""
        lowered = email.strip().lower()
        for found in self.users():
            if found.email == lowered:
                return found
        raise _no_user(email)

    def disable_user(self, email: str) -> User:
        """Disable ``email``: their sessions end at once, on every replica; no more logins."""
        user = self.user(email)
        if user.disabled:
            raise ConfigError(f"user {user.email!r} was already disabled")
        now = self._clock()

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(update(users).where(users.c.id == user.id).values(disabled_ms=now))
            await conn.execute(delete(sessions).where(sessions.c.user == user.id))

        self._run(write, write=True)
        return msgspec.structs.replace(user, disabled=True)

    def reset_password(self, email: str) -> str:
        """Give ``email`` a new one-time password (returned, to be shown once); ends their
        sessions and forgets their account's failed logins."""
        user = self.user(email)
        password = one_time_password()
        digest = self.passwords.hash(password)
        now = self._clock()

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(password_hash=digest, must_change_password=True, password_changed_ms=now)
            )
            await conn.execute(delete(sessions).where(sessions.c.user == user.id))
            await conn.execute(_forget_failures("account", user.email))

        self._run(write, write=True)
        return password

    def create_group(
        self, name: str, levels: Mapping[Section, Level], scopes: Sequence[Scope]
    ) -> Group:
        """Add an access group with ``levels`` (``none`` where not given) over ``scopes``."""
        check_name("group", name)
        given = checked_levels(levels.items())
        if not scopes:
            raise ConfigError(f"group {name!r} needs a project to cover: --project P")
        if len({s.project for s in scopes}) != len(scopes):
            raise ConfigError(f"group {name!r} names a project twice; give each project once")
        now = self._clock()

        async def write(conn: AsyncConnection) -> None:
            for scope in scopes:
                await check_scope(conn, scope)
            await conn.execute(
                insert(groups).values(
                    name=name, builtin=False, levels=levels_json(given), created_ms=now
                )
            )
            await conn.execute(insert(group_scopes), [scope_row(name, s) for s in scopes])

        try:
            self._run(write, write=True)
        except IntegrityError:
            raise ConfigError(f"group {name!r} already exists") from None
        return self.group(name)

    def grant(self, group: str, section: Section, level: Level) -> Group:
        """Set ``group``'s level on ``section``; the built-in groups can't be changed."""
        (checked,) = checked_levels([(section, level)]).items()

        async def write(conn: AsyncConnection) -> None:
            levels = {**await custom_levels(conn, group), checked[0]: checked[1]}
            await conn.execute(
                update(groups).where(groups.c.name == group).values(levels=levels_json(levels))
            )

        self._run(write, write=True)
        return self.group(group)

    def set_scope(self, group: str, scope: Scope) -> Group:
        """Cover ``scope`` with ``group``, in place of what it covered of that project."""

        async def write(conn: AsyncConnection) -> None:
            await custom_levels(conn, group)
            await check_scope(conn, scope)
            await conn.execute(
                delete(group_scopes).where(
                    group_scopes.c.group == group, group_scopes.c.project == scope.project
                )
            )
            await conn.execute(insert(group_scopes).values(scope_row(group, scope)))

        self._run(write, write=True)
        return self.group(group)

    def remove_scope(self, group: str, project: str) -> Group:
        """Stop ``group`` covering ``project``."""

        async def write(conn: AsyncConnection) -> int:
            await custom_levels(conn, group)
            done = await conn.execute(
                delete(group_scopes).where(
                    group_scopes.c.group == group, group_scopes.c.project == project
                )
            )
            return done.rowcount

        if not self._run(write, write=True):
            raise ConfigError(f"group {group!r} does not cover project {project!r}")
        return self.group(group)

    def add_user(self, group: str, email: str) -> Group:
        """Put the user ``email`` in ``group``."""
        user = self.user(email)
        if group in user.groups:
            raise ConfigError(f"user {user.email!r} is already in group {group!r}")

        async def write(conn: AsyncConnection) -> None:
            await known_groups(conn, (group,))
            await conn.execute(insert(memberships).values(user=user.id, group=group))

        self._run(write, write=True)
        return self.group(group)

    def remove_user(self, group: str, email: str) -> Group:
        """Take the user ``email`` out of ``group``."""
        user = self.user(email)
        self.group(group)
        if group not in user.groups:
            raise ConfigError(f"user {user.email!r} is not in group {group!r}")

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(
                delete(memberships).where(
                    memberships.c.user == user.id, memberships.c.group == group
                )
            )

        self._run(write, write=True)
        return self.group(group)

    def groups(self) -> list[Group]:
        """Every access group with its levels, scopes and members' emails, by name."""
        return self._run(read_groups)

    def group(self, name: str) -> Group:
        """The group ``name``; ConfigError naming the known ones if there is none."""
        found = {g.name: g for g in self.groups()}
        if name not in found:
            raise ConfigError(f"no group {name!r}; groups: {', '.join(found)}")
        return found[name]

    def access_of(self, user: User) -> Access:
        """What ``user`` may see and do, from the groups they are in now."""

        async def read(conn: AsyncConnection) -> Access:
            return await read_access(conn, user.id, user.email)

        return self._run(read)

    def _run(self, work: Work[_T], *, write: bool = False) -> _T:
        if not self._checked:
            schema.prepare(self.db)
            self._checked = True
        return self.db.run(work, write=write)

    # --- the gateway's side: on its event loop --------------------------------------------

    async def login(
        self, email: str, password: str, address: str, *, user_agent: str | None = None
    ) -> tuple[str, Session]:
        """Log in: a new session's token (for the cookie, never stored) and the session.

        Raises:
            ApiError: 401 for a wrong email or password or a disabled user, all alike; 429 with
                ``Retry-After`` while the account or the address is throttled.
        """
        now = self._clock()
        account = email.strip().lower()[:MAX_EMAIL_CHARS]
        found = await self.db.arun(functools.partial(self._login_read, account, address, now))
        wait_ms, row = found
        if wait_ms > 0:
            raise _throttled(wait_ms)
        stored = None if row is None else str(row.password_hash)
        right = await self.passwords.averify(stored, password)
        if stored is None or not right or row.disabled_ms is not None:
            failed = {"account": account, "address": address}
            await self.db.arun(functools.partial(self._failed, failed, now), write=True)
            raise ApiError(401, WRONG_LOGIN)
        user_id = row.id
        rehashed = None
        if self.passwords.needs_rehash(stored):
            rehashed = await self.passwords.ahash(password)
        token, csrf = secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES)

        async def open_session(conn: AsyncConnection) -> Session:
            await conn.execute(_forget_failures("account", account))
            await self._prune(conn, now)
            if rehashed is not None:
                await conn.execute(
                    update(users).where(users.c.id == user_id).values(password_hash=rehashed)
                )
            await conn.execute(
                insert(sessions).values(
                    token_hash=token_hash(token),
                    user=user_id,
                    csrf=csrf,
                    created_ms=now,
                    seen_ms=now,
                    address=address,
                    user_agent=user_agent,
                )
            )
            user = await _user(conn, user_id)
            access = await read_access(conn, user.id, user.email)
            return Session(user, csrf, access, now, now)

        return token, await self.db.arun(open_session, write=True)

    async def session(self, token: str) -> Session | None:
        """The session of ``token``; None if it is unknown, has ended, or its user is disabled."""
        if not token or len(token) > 4 * TOKEN_BYTES:
            return None
        digest = token_hash(token)
        now = self._clock()

        async def read(conn: AsyncConnection) -> Session | None:
            found = await conn.execute(
                select(
                    sessions.c.user, sessions.c.csrf, sessions.c.created_ms, sessions.c.seen_ms
                ).where(sessions.c.token_hash == digest)
            )
            row = found.first()
            if row is None:
                return None
            user = await _user(conn, row.user)
            access = await read_access(conn, user.id, user.email)
            return Session(user, row.csrf, access, row.created_ms, row.seen_ms)

        found = await self.db.arun(read)
        if found is None:
            return None
        rules = self.rules
        if (
            found.user.disabled
            or now - found.seen_ms >= rules.idle_ms
            or now - found.created_ms >= rules.lifetime_ms
        ):
            await self.db.arun(_ending(sessions.c.token_hash == digest), write=True)
            return None
        if now - found.seen_ms >= rules.touch_ms:

            async def touch(conn: AsyncConnection) -> None:
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.token_hash == digest, sessions.c.seen_ms < now)
                    .values(seen_ms=now)
                )

            await self.db.arun(touch, write=True)
            found = msgspec.structs.replace(found, seen_ms=now)
        return found

    async def logout(self, token: str) -> None:
        """End the session of ``token``, on every replica at once (nothing if it had ended)."""
        await self.db.arun(_ending(sessions.c.token_hash == token_hash(token)), write=True)

    async def change_password(self, token: str, current: str, new: str) -> str:
        """Change the logged-in user's password; returns the token of their new session.

        Every session of the user ends, this one included (a new one replaces it), and the
        one-time password, if it was one, is done with.

        Raises:
            ApiError: 401 without a session; 400 naming the rule a new password breaks, or for
                a wrong current password (which counts as a failed login of the account); 429
                while the account is throttled.
        """
        found = await self.session(token)
        if found is None:
            raise ApiError(401, NO_SESSION)
        user = found.user
        problem = password_problem(new, user.email)
        if problem:
            raise ApiError(400, f"new password {problem}")
        now = self._clock()

        async def read(conn: AsyncConnection) -> tuple[int, str]:
            wait = await self._wait(conn, {"account": user.email}, now)
            stored = await conn.execute(select(users.c.password_hash).where(users.c.id == user.id))
            return wait, stored.scalar_one()

        wait_ms, stored = await self.db.arun(read)
        if wait_ms > 0:
            raise _throttled(wait_ms)
        if not await self.passwords.averify(stored, current):
            failed = {"account": user.email}
            await self.db.arun(functools.partial(self._failed, failed, now), write=True)
            raise ApiError(400, WRONG_CURRENT)
        problem = password_problem(new, user.email, current)
        if problem:
            raise ApiError(400, f"new password {problem}")
        digest = await self.passwords.ahash(new)
        fresh, csrf = secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES)

        async def rotate(conn: AsyncConnection) -> None:
            old = await conn.execute(
                select(sessions.c.address, sessions.c.user_agent).where(
                    sessions.c.token_hash == token_hash(token)
                )
            )
            where = old.first()
            if where is None:  # logged out meanwhile
                raise ApiError(401, NO_SESSION)
            await conn.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(password_hash=digest, must_change_password=False, password_changed_ms=now)
            )
            await conn.execute(delete(sessions).where(sessions.c.user == user.id))
            await conn.execute(_forget_failures("account", user.email))
            await conn.execute(
                insert(sessions).values(
                    token_hash=token_hash(fresh),
                    user=user.id,
                    csrf=csrf,
                    created_ms=now,
                    seen_ms=now,
                    address=where.address,
                    user_agent=where.user_agent,
                )
            )

        await self.db.arun(rotate, write=True)
        return fresh

    # --- inside ---------------------------------------------------------------------------

    async def _login_read(self, account: str, address: str, now: int, conn: AsyncConnection) -> Any:
        wait = await self._wait(conn, {"account": account, "address": address}, now)
        found = await conn.execute(
            select(users.c.id, users.c.password_hash, users.c.disabled_ms).where(
                users.c.email == account
            )
        )
        return wait, found.first()

    async def _wait(self, conn: AsyncConnection, names: Mapping[str, str], now: int) -> int:
        """How many ms until ``names`` (``account``/``address`` -> name) may try again; 0: now."""
        found = await conn.execute(
            select(login_failures.c.what, login_failures.c.window_ms, login_failures.c.count).where(
                or_(
                    *(
                        and_(login_failures.c.what == what, login_failures.c.name == name)
                        for what, name in names.items()
                    )
                )
            )
        )
        wait = 0
        for what, window_ms, count in found:
            throttle = self._throttle(what)
            ends = window_ms + throttle.window_ms
            if count >= throttle.failures and now < ends:
                wait = max(wait, ends - now)
        return wait

    async def _failed(self, names: Mapping[str, str], now: int, conn: AsyncConnection) -> None:
        """Count a failed login against each of ``names``, in a window begun now if none runs."""
        upsert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert
        for what, name in names.items():
            fresh = login_failures.c.window_ms <= now - self._throttle(what).window_ms
            add = upsert(login_failures).values(what=what, name=name, window_ms=now, count=1)
            await conn.execute(
                add.on_conflict_do_update(
                    index_elements=list(login_failures.primary_key),
                    set_={
                        "count": case((fresh, 1), else_=login_failures.c.count + 1),
                        "window_ms": case((fresh, now), else_=login_failures.c.window_ms),
                    },
                )
            )
        longest = max(self.rules.account.window_ms, self.rules.address.window_ms)
        await conn.execute(delete(login_failures).where(login_failures.c.window_ms < now - longest))

    async def _prune(self, conn: AsyncConnection, now: int) -> None:
        """Forget sessions that have ended by time (they are refused anyway)."""
        await conn.execute(
            delete(sessions).where(
                or_(
                    sessions.c.seen_ms <= now - self.rules.idle_ms,
                    sessions.c.created_ms <= now - self.rules.lifetime_ms,
                )
            )
        )

    def _throttle(self, what: str) -> Throttle:
        return self.rules.account if what == "account" else self.rules.address


# --- statements and reads shared by both sides -----------------------------------------------


def _ending(condition: Any) -> Work[None]:
    async def end(conn: AsyncConnection) -> None:
        await conn.execute(delete(sessions).where(condition))

    return end


def _forget_failures(what: str, name: str) -> Any:
    return delete(login_failures).where(
        login_failures.c.what == what, login_failures.c.name == name
    )


def _throttled(wait_ms: int) -> ApiError:
    seconds = wait_ms / 1000
    headers = retry_after(seconds)
    return ApiError(
        429, f"too many failed logins: try again in {headers['Retry-After']} s", headers
    )


def _no_user(email: str) -> ConfigError:
    return ConfigError(f"no user {email!r}; `voxloop-gateway users list` shows them")


async def _user(conn: AsyncConnection, user_id: str) -> User:
    found = await conn.execute(
        select(users.c.email, users.c.disabled_ms, users.c.must_change_password).where(
            users.c.id == user_id
        )
    )
    email, disabled_ms, must_change = found.one()
    names = await conn.execute(
        select(memberships.c.group)
        .where(memberships.c.user == user_id)
        .order_by(memberships.c.group)
    )
    return User(user_id, email, tuple(names.scalars()), disabled_ms is not None, bool(must_change))


__all__ = [
    "DEFAULT_RULES",
    "NO_SESSION",
    "WRONG_CURRENT",
    "WRONG_LOGIN",
    "Group",
    "People",
    "Rules",
    "Session",
    "Throttle",
    "User",
    "check_email",
    "token_hash",
]
