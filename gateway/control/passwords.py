"""Passwords: the rules a new one follows, and argon2id hashing kept off the event loop.

OWASP ASVS 2.1 and 2.4: at least 12 characters and at most 128, any Unicode character (a code
point counts as one), no composition rules; not the account's email address. Hashes are argon2id
with RFC 9106's parameters (argon2-cffi's :class:`PasswordHasher` defaults), checked for a
rehash whenever one is verified, so a raised cost reaches every account at its next login.

Passwords are NFKC-normalised before hashing and comparing (NIST SP 800-63B 5.1.1.2), so one
password typed on two keyboards, with composed or decomposed accents, is one password.

``VOXLOOP_PASSWORD_COST`` (``m=KIB,t=PASSES,p=LANES``, as a stored hash writes them) sets another
cost: for a machine that can't spare the default's 64 MiB and four lanes a login, or a test
suite that hashes hundreds of times. It is refused below OWASP's least argon2id costs (the
Password Storage Cheat Sheet's five equivalent pairs, 46 MiB and 1 pass to 7 MiB and 5 passes),
so no value makes hashes cheaper to guess than OWASP allows.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import unicodedata
from collections.abc import Mapping
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import ConfigError

MIN_PASSWORD_CHARS: Final = 12
MAX_PASSWORD_CHARS: Final = 128
#: Random bytes of a one-time password: 20 characters of base64url.
ONE_TIME_PASSWORD_BYTES: Final = 15
#: The variable that sets argon2id's cost; unset, RFC 9106's (argon2-cffi's defaults).
COST_VARIABLE: Final = "VOXLOOP_PASSWORD_COST"
#: OWASP's least argon2id costs, each as hard to guess against as the others: (memory in KiB,
#: passes), with one lane. A cost must reach both numbers of one of them.
OWASP_LEAST_COSTS: Final = ((47_104, 1), (19_456, 2), (12_288, 3), (9_216, 4), (7_168, 5))
_COST: Final = re.compile(r"m=(\d{1,9}),t=(\d{1,9}),p=(\d{1,9})")
_LEAST: Final = " / ".join(f"m={m},t={t}" for m, t in OWASP_LEAST_COSTS)


def normalized(password: str) -> str:
    """The password as hashed and compared: NFKC, so that equivalent characters are one."""
    return unicodedata.normalize("NFKC", password)


def password_problem(password: str, email: str, current: str | None = None) -> str | None:
    """What is wrong with ``password`` as the new password of ``email`` (``must ...``), or None.

    ``current``, when given, is the password it replaces: the new one must differ from it.
    """
    chars = len(normalized(password))
    if chars < MIN_PASSWORD_CHARS:
        return f"must be at least {MIN_PASSWORD_CHARS} characters"
    if chars > MAX_PASSWORD_CHARS:
        return f"must be at most {MAX_PASSWORD_CHARS} characters"
    if normalized(password).casefold() == email.casefold():
        return "must not be the email address"
    if current is not None and normalized(password) == normalized(current):
        return "must differ from the current password"
    return None


def one_time_password() -> str:
    """A random password for a new user or a reset, to be changed at the first login."""
    return secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)


def hasher_for(cost: str) -> PasswordHasher:
    """argon2id at ``cost``, written ``m=19456,t=2,p=1`` (KiB of memory, passes, lanes).

    Raises:
        ConfigError: the text is not in that form, the cost is below every one of OWASP's
            least costs, or it has more lanes than argon2 allows (one per 8 KiB).
    """
    said = f"{COST_VARIABLE}={cost!r}"
    found = _COST.fullmatch(cost.replace(" ", ""))
    if not found:
        raise ConfigError(f"{said} is not valid: it must be m=KIB,t=PASSES,p=LANES")
    memory, passes, lanes = (int(n) for n in found.groups())
    if not any(memory >= m and passes >= t for m, t in OWASP_LEAST_COSTS):
        raise ConfigError(
            f"{said} is cheaper than OWASP allows: it must reach one of {_LEAST} (KiB, passes)"
        )
    if not 1 <= lanes <= memory // 8:
        raise ConfigError(f"{said} is not valid: p must be from 1 to m/8 ({memory // 8})")
    return PasswordHasher(time_cost=passes, memory_cost=memory, parallelism=lanes)


def configured_hasher(environ: Mapping[str, str] | None = None) -> PasswordHasher:
    """argon2id at ``VOXLOOP_PASSWORD_COST``'s cost, or at RFC 9106's when it is unset or empty.

    Args:
        environ: the environment; ``os.environ`` by default.

    Raises:
        ConfigError: the variable's value is refused (see :func:`hasher_for`).
    """
    environ = os.environ if environ is None else environ
    cost = environ.get(COST_VARIABLE)
    return hasher_for(cost) if cost else PasswordHasher()


class Passwords:
    """Hashing and verifying passwords with argon2id; the awaited forms run in a thread.

    Hashing takes tens of milliseconds of CPU and tens of megabytes by design: on the event
    loop it would stall every request meanwhile.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or configured_hasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        """The PHC string of ``password`` (for the CLI, which has no loop to keep free)."""
        return self._hasher.hash(normalized(password))

    async def ahash(self, password: str) -> str:
        """:meth:`hash`, in a thread."""
        return await asyncio.to_thread(self.hash, password)

    async def averify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` is the one ``stored`` hashes, in a thread.

        ``stored`` None (no such account) verifies against a hash of a random password, so
        that the answer takes as long as for an account that exists, and is False.
        """
        if self._dummy is None:  # made at the first call, whichever: the first answers alike
            self._dummy = await self.ahash(secrets.token_urlsafe(16))
        if stored is None:
            await asyncio.to_thread(self._verify, self._dummy, password)
            return False
        return await asyncio.to_thread(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than this hasher's."""
        return self._hasher.check_needs_rehash(stored)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, normalized(password))
        except (VerificationError, InvalidHashError):
            return False
