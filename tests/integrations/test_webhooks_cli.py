"""``voxloop-gateway webhooks add|list|remove|rotate-secret|enable``: the secret shown once,
lists without secrets, refusals in one line with exit status 2."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.conftest import Command, command, make_project

__all__ = ["command"]  # a fixture

ALLOW = {"VOXLOOP_WEBHOOK_ALLOW": "127.0.0.0/8"}


def test_add_prints_the_secret_once_and_list_shows_the_endpoint(
    tmp_path: Path, command: Command
) -> None:
    make_project(tmp_path)
    where = ("--data-dir", str(tmp_path))
    added = command(
        *where,
        "webhooks",
        "add",
        "shop",
        "http://127.0.0.1:9/hook",
        "--event",
        "alert.fired",
        "--event",
        "response.created",
        "--description",
        "CRM",
        env=ALLOW,
    )
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "\n" not in secret
    endpoint = added.stderr.split()[0]
    assert endpoint.startswith("ep_")
    listed = command(*where, "webhooks", "list")
    assert listed.returncode == 0
    assert listed.stdout.split() == [
        endpoint,
        "shop",
        "active",
        "response.created,alert.fired",
        "http://127.0.0.1:9/hook",
        "-",
    ]
    assert secret not in listed.stdout
    assert command(*where, "webhooks", "list", "shop").stdout == listed.stdout
    rotated = command(*where, "webhooks", "rotate-secret", endpoint)
    assert rotated.returncode == 0
    assert rotated.stdout.strip().startswith("whsec_") and rotated.stdout.strip() != secret
    assert "previous secret signs until" in rotated.stderr
    assert "previous secret signs until" in command(*where, "webhooks", "list").stdout
    enabled = command(*where, "webhooks", "enable", endpoint)
    assert enabled.returncode == 0 and endpoint in enabled.stdout
    removed = command(*where, "webhooks", "remove", endpoint)
    assert removed.returncode == 0 and removed.stdout.startswith(f"removed {endpoint}")
    assert command(*where, "webhooks", "list").stdout == ""


def test_refusals_are_one_line_with_status_2(tmp_path: Path, command: Command) -> None:
    make_project(tmp_path)
    where = ("--data-dir", str(tmp_path))
    add = (*where, "webhooks", "add", "shop")
    refusals = [
        ((*add, "http://127.0.0.1:9/", "--event", "alert.fired"), {}, "url is refused"),
        ((*add, "http://localhost:9/", "--event", "alert.fired"), {}, "loopback"),
        ((*add, "http://10.0.0.1/", "--event", "alert.fired"), ALLOW, "private"),
        ((*add, "ftp://example.com/", "--event", "alert.fired"), ALLOW, "http or https"),
        ((*add, "http://127.0.0.1:9/", "--event", "nope"), ALLOW, "invalid choice: 'nope'"),
        ((*add, "http://127.0.0.1:9/"), ALLOW, "--event"),
        (
            (*where, "webhooks", "add", "cafe", "http://127.0.0.1:9/", "--event", "alert.fired"),
            ALLOW,
            "no project 'cafe'",
        ),
        ((*where, "webhooks", "remove", "ep_nope"), {}, "no webhook endpoint 'ep_nope'"),
        ((*where, "webhooks", "rotate-secret", "ep_nope"), {}, "no webhook endpoint"),
    ]
    for args, env, said in refusals:
        done = command(*args, env=env)
        assert done.returncode == 2, (args, done.stderr)
        assert said in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert done.stdout == ""
    assert command(*where, "webhooks", "list").stdout == ""
