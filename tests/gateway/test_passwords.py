"""argon2id's cost: RFC 9106's by default, ``VOXLOOP_PASSWORD_COST`` when set, never below
OWASP's least costs; a value refused stops a command or a gateway's start in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voxloop_gateway.control.db import Database
from voxloop_gateway.control.passwords import (
    COST_VARIABLE,
    OWASP_LEAST_COSTS,
    Passwords,
    configured_hasher,
    hasher_for,
)
from voxloop_gateway.control.people import People
from voxloop_gateway.control.tables import users
from voxloop_gateway.errors import ConfigError

from .conftest import clean_environ, make_project
from .test_people import stored

PASSWORD = "correct horse battery"
LEAST = "m=47104,t=1 / m=19456,t=2 / m=12288,t=3 / m=9216,t=4 / m=7168,t=5 (KiB, passes)"


def test_unset_or_empty_the_cost_is_rfc_9106s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(COST_VARIABLE, raising=False)
    passwords = Passwords()
    digest = passwords.hash(PASSWORD)
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), digest
    assert not passwords.needs_rehash(digest)
    monkeypatch.setenv(COST_VARIABLE, "")
    assert configured_hasher().hash(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


async def test_the_variable_sets_the_cost_of_new_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COST_VARIABLE, "m=19456,t=2,p=1")
    passwords = Passwords()
    digest = passwords.hash(PASSWORD)
    assert digest.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), digest
    assert await passwords.averify(digest, PASSWORD)
    assert not await passwords.averify(digest, PASSWORD + "!")
    # A hash made at another cost still verifies, and is due for a rehash at this one.
    default = Passwords(hasher_for("m=65536,t=3,p=4")).hash(PASSWORD)
    assert await passwords.averify(default, PASSWORD) and passwords.needs_rehash(default)


@pytest.mark.parametrize(
    "least", OWASP_LEAST_COSTS, ids=[f"m={m},t={t}" for m, t in OWASP_LEAST_COSTS]
)
def test_each_of_owasps_least_costs_and_more_is_taken(least: tuple[int, int]) -> None:
    memory, passes = least
    for cost in (f"m={memory},t={passes},p=1", f"m={memory * 2},t={passes + 1},p=2"):
        hasher = configured_hasher({COST_VARIABLE: cost})
        assert (hasher.memory_cost, hasher.time_cost) >= (memory, passes)
        assert hasher.hash(PASSWORD).startswith(f"$argon2id$v=19${cost}$")


REFUSED = {
    "words": ("fast", "is not valid: it must be m=KIB,t=PASSES,p=LANES"),
    "no-lanes": ("m=19456,t=2", "is not valid: it must be m=KIB,t=PASSES,p=LANES"),
    "other-order": ("t=2,m=19456,p=1", "is not valid: it must be m=KIB,t=PASSES,p=LANES"),
    "negative": ("m=-19456,t=2,p=1", "is not valid: it must be m=KIB,t=PASSES,p=LANES"),
    "cheapest": ("m=8,t=1,p=1", f"is cheaper than OWASP allows: it must reach one of {LEAST}"),
    "memory-short": (
        "m=19455,t=2,p=1",
        f"is cheaper than OWASP allows: it must reach one of {LEAST}",
    ),
    "passes-short": (
        "m=7168,t=4,p=4",
        f"is cheaper than OWASP allows: it must reach one of {LEAST}",
    ),
    "no-lane": ("m=19456,t=2,p=0", "is not valid: p must be from 1 to m/8 (2432)"),
    "too-many-lanes": ("m=7168,t=5,p=897", "is not valid: p must be from 1 to m/8 (896)"),
}


@pytest.mark.parametrize(("cost", "message"), REFUSED.values(), ids=REFUSED)
def test_a_value_below_owasps_least_or_malformed_is_refused(cost: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        configured_hasher({COST_VARIABLE: cost})
    assert str(caught.value) == f"{COST_VARIABLE}={cost!r} {message}"


def _command(data_dir: Path, cost: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(**{COST_VARIABLE: cost}),
    )


def test_commands_and_the_gateway_hash_at_the_cost_or_refuse_it_in_one_line(
    tmp_path: Path,
) -> None:
    make_project(tmp_path)
    made = _command(
        tmp_path, "m=12288,t=3,p=1", "users", "create", "a@example.com", "--group", "owner"
    )
    assert made.returncode == 0, made.stderr
    db = Database(tmp_path)
    try:
        people = People(db)
        digest = stored(people, users.c.password_hash, "a@example.com")
        assert digest.startswith("$argon2id$v=19$m=12288,t=3,p=1$"), digest

        for args in (["users", "create", "b@example.com", "--group", "owner"], ["serve"]):
            refused = _command(tmp_path, "m=8192,t=1,p=1", *args)
            assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
            assert refused.stderr.splitlines() == [
                f"voxloop-gateway: {COST_VARIABLE}='m=8192,t=1,p=1' is cheaper than OWASP"
                f" allows: it must reach one of {LEAST}"
            ]
        assert [user.email for user in people.users()] == ["a@example.com"]
    finally:
        db.close()


def test_init_refuses_a_cost_below_owasps_before_it_makes_anything(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    refused = _command(data_dir, "m=8192,t=1,p=1", "init", "--owner", "owner@example.com")
    assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
    assert refused.stderr.splitlines() == [
        f"voxloop-gateway: {COST_VARIABLE}='m=8192,t=1,p=1' is cheaper than OWASP"
        f" allows: it must reach one of {LEAST}"
    ]
    assert not data_dir.exists() or not any(data_dir.rglob("*.sqlite3")), list(data_dir.rglob("*"))
    made = _command(data_dir, "m=12288,t=3,p=1", "init", "--owner", "owner@example.com")
    assert made.returncode == 0, made.stderr
    assert "owner@example.com" in made.stdout
