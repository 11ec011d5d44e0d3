"""``ivr calendar hours``: the agents' hours on the calendar's days, through the real CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pg import scratch_database

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def upgraded(storage: Path, ivr_cli: Cli) -> Cli:
    ivr_cli("db", "upgrade")
    return ivr_cli


def days_listed(out: str) -> dict[str, str]:
    """``{"1405/01/05": "08:00–16:00", "1405/01/06": "off", …}`` from the listing."""
    rows = [line.split() for line in out.splitlines() if line.startswith("  ")]
    return {row[0]: row[2] for row in rows}


def test_nowruz_eve_lists_the_days_off_and_the_next_opening(upgraded: Cli) -> None:
    out = upgraded("calendar", "hours", "--province", "qom", "--at", "1404/12/27 17:00").stdout
    lines = out.splitlines()
    assert lines[0] == "qom: 08:00–16:00 on working days (Tehran); Thursdays by the decree in force"
    assert lines[1].endswith(": agents are off")
    assert lines[2] == "next opening: چهارشنبه ۰۵ فروردین ۱۴۰۵ ساعت ۰۸:۰۰"
    listed = days_listed(out)
    assert len(listed) == 7  # a week by default
    assert listed["1404/12/27"] == "08:00–16:00"  # the day itself, already over at 17:00
    assert {listed[f"1405/01/0{d}"] for d in (1, 2, 3, 4)} == {"off"}  # Nowruz
    assert "1405/01/05" not in listed  # the eighth day
    assert "Fri" in out and "Wed" in out


def test_inside_hours_and_a_closure_of_one_province(upgraded: Cli) -> None:
    at = ("--at", "1405/02/26 10:00")  # a Saturday
    inside = upgraded("calendar", "hours", "--province", "qom", *at, "--days", "3").stdout
    assert "agents answer" in inside and "next opening" not in inside
    assert days_listed(inside) == {
        "1405/02/26": "08:00–16:00",
        "1405/02/27": "08:00–16:00",
        "1405/02/28": "08:00–16:00",
    }
    upgraded("calendar", "add", "1405/02/27", "snow", "--closure", "--province", "qom")
    qom = upgraded("calendar", "hours", "--province", "qom", *at, "--days", "3").stdout
    tehran = upgraded("calendar", "hours", "--province", "tehran", *at, "--days", "3").stdout
    assert days_listed(qom)["1405/02/27"] == "off"
    assert days_listed(tehran)["1405/02/27"] == "08:00–16:00"


def test_callbacks_hours_is_the_same_answer(upgraded: Cli) -> None:
    at = ("--province", "qom", "--at", "1404/12/27 17:00")
    old = upgraded("callbacks", "hours", *at).stdout
    new = upgraded("calendar", "hours", *at, "--days", "0").stdout
    assert old == new and "next opening" in old


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("--province", "nowhere"), "nowhere"),
        (("--at", "1405/13/01"), "--at"),
        (("--days", "99"), "--days"),
    ],
)
def test_wrong_input_is_one_clear_line(upgraded: Cli, args: tuple[str, ...], names: str) -> None:
    done = upgraded("calendar", "hours", *args, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert names in line


def test_a_new_embedded_database_is_created_by_the_command_itself(ivr_cli: Cli) -> None:
    done = ivr_cli("calendar", "hours", "--days", "1")
    assert "08:00–16:00" in done.stdout


def test_a_postgresql_database_never_upgraded_is_one_clear_line(ivr_cli: Cli) -> None:
    with scratch_database() as url:
        done = ivr_cli("calendar", "hours", check=False, database_url=url)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "ivr db upgrade" in line
