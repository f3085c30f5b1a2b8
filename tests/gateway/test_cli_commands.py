"""Every command of ``voxloop-gateway``: its help, and one line for what it doesn't know."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from voxloop_gateway.cli import cli, main
from voxloop_gateway.settings import RULES, env_name, flag_name

from .conftest import Command, make_project

GLOBAL = ("data_dir", "store")


def _commands(
    group: click.Group = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = dict(_commands())


def test_the_commands_are_the_documented_ones() -> None:
    assert sorted(" ".join(path) for path in COMMANDS) == [
        "",
        "core",
        "demo",
        "digests",
        "digests add",
        "digests list",
        "digests remove",
        "email-secret",
        "email-secret create",
        "email-secret list",
        "email-secret revoke",
        "erase",
        "export",
        "groups",
        "groups add-user",
        "groups create",
        "groups grant",
        "groups list",
        "groups remove-user",
        "groups scope",
        "init",
        "keys",
        "keys create",
        "keys list",
        "keys revoke",
        "mail",
        "mail test",
        "migrate",
        "privacy",
        "privacy set",
        "privacy show",
        "projects",
        "projects create",
        "projects list",
        "purge",
        "serve",
        "stats",
        "users",
        "users create",
        "users disable",
        "users list",
        "users reset-password",
        "webhooks",
        "webhooks add",
        "webhooks enable",
        "webhooks list",
        "webhooks remove",
        "webhooks rotate-secret",
    ]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "(root)")
def test_every_help_exits_0_says_what_the_command_does_and_names_its_flags(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    command = COMMANDS[path]
    assert main([*path, "--help"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"Usage: voxloop-gateway {' '.join(path)}".rstrip())
    text = " ".join(out.split())
    assert command.help and " ".join(command.help.split()[:4]) in text  # what it does
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                assert re.search(rf"(^|[\s,]){re.escape(opt)}\b", out), (opt, out)
            assert param.help, f"{param.opts} has no help"
        else:
            assert (param.name or "").upper() in out, (param.name, out)
    if isinstance(command, click.Group):
        for name in command.commands:
            assert re.search(rf"^\s+{re.escape(name)}\s", out, re.M), (name, out)
    assert main([*path, "-h"]) == 0
    assert capsys.readouterr().out == out


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_every_setting_is_a_flag_of_serve_and_demo_naming_its_variable_and_rule(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, rule in RULES.items():
        if name in GLOBAL:
            assert f" {flag_name(name)} {name.upper()} " not in text
            continue
        assert flag_name(name) in text and env_name(name) in text, name
        assert " ".join(rule.must_be.split()[:3]) in text, name


def test_the_root_help_names_the_global_flags_and_the_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--data-dir" in out and "--store" in out and "VOXLOOP_STORE" in out
    assert main(["--version"]) == 0
    assert re.fullmatch(r"voxloop-gateway \S+\n", capsys.readouterr().out)


#: arguments -> how the one line on stderr starts
UNKNOWN: dict[str, tuple[list[str], str]] = {
    "command": (["statz"], "voxloop-gateway: argument command: invalid choice: 'statz'"),
    "verb": (["keys", "frob"], "voxloop-gateway keys: argument verb: invalid choice: 'frob'"),
    "option": (["--bogus"], "voxloop-gateway: unrecognized arguments: --bogus"),
    "option-of-a-verb": (["keys", "list", "--all"], "voxloop-gateway: unrecognized arguments"),
    "option-of-serve": (
        ["serve", "--prot", "1"],
        "voxloop-gateway: unrecognized arguments: --prot",
    ),
    "global-flag-after-the-command": (
        ["serve", "--data-dir", "x"],
        "voxloop-gateway: unrecognized arguments: --data-dir",
    ),
    "extra-argument": (
        ["stats", "shop", "more", "--metric", "nps"],
        "voxloop-gateway: unrecognized arguments: more",
    ),
    "missing-argument": (
        ["keys", "create", "--kind", "site"],
        "voxloop-gateway keys create: the following arguments are required: project",
    ),
    "missing-value": (
        ["stats", "shop", "--metric"],
        "voxloop-gateway stats: argument --metric: expected one argument",
    ),
    "bad-kind": (
        ["keys", "create", "shop", "--kind", "admin"],
        "voxloop-gateway keys create: argument --kind: invalid choice: 'admin'"
        " (choose from 'site', 'server', 'read')",
    ),
}


@pytest.mark.parametrize(("args", "start"), UNKNOWN.values(), ids=UNKNOWN)
def test_what_the_command_line_does_not_know_is_one_line_and_status_2(
    tmp_path: Path, command: Command, args: list[str], start: str
) -> None:
    make_project(tmp_path)
    done = command("--data-dir", str(tmp_path), *args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, lines
    assert lines[0].startswith(start), lines[0]
    assert lines[0].endswith(" --help)"), lines[0]  # where to look


def test_lists_piped_are_plain_aligned_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_project(tmp_path)
    assert main(["--data-dir", str(tmp_path), "projects", "create", "a-much-longer-name"]) == 0
    assert (
        main(
            ["--data-dir", str(tmp_path), "keys", "create", "a-much-longer-name"]
            + ["--kind", "server"]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["--data-dir", str(tmp_path), "keys", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 3 and "\x1b" not in out and "─" not in out
    assert all(line == line.rstrip() for line in lines)
    rows = [line.split() for line in lines]
    assert all(len(row) == 7 for row in rows), rows
    assert sorted(row[1] for row in rows) == ["a-much-longer-name", "shop", "shop"]
    assert len({tuple(_starts(line)) for line in lines}) == 1, lines  # the columns align


def _starts(line: str) -> list[int]:
    """Where each of the line's fields starts."""
    return [found.start() for found in re.finditer(r"\S+", line)]
