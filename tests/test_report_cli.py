"""``ivr report`` on the fixture day: Jalali, Persian-digit and ISO dates, one province or the
nation, wrong input as one line, and ``--send`` really received by a local SMTP server (aiosmtpd)
with the PDF and the CSV attached."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import report_day
from report_day import DAY
from test_escalation import Mailbox, start_smtp

from ivr.supervisors import add_supervisor
from ivr.tickets.db import make_engine, upgrade

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_ivr(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("ivr")), *args]
    done = subprocess.run(
        command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    if check:
        assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def make_env(ivr_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """``make_env(storage, **settings)``: the conftest's ``ivr_env`` plus ``IVR_*`` settings."""

    def made(storage: Path, **settings: str) -> dict[str, str]:
        env = dict(ivr_env, IVR_STORAGE_DIR=str(storage))
        env.update({f"IVR_{k.upper()}": v for k, v in settings.items()})
        return env

    return made


@pytest.fixture
def day_storage(storage: Path) -> Path:
    url = f"sqlite:///{storage / 'ivr.db'}"
    upgrade(url)
    engine = make_engine(url)
    report_day.load(engine)
    add_supervisor(engine, "Qom one", "qom1@example.org", "qom")
    add_supervisor(engine, "Qom two", "qom2@example.org", "qom")
    add_supervisor(engine, "Ministry", "national@example.org")
    engine.dispose()
    return storage


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller, box.url = start_smtp(box)
    yield box
    controller.stop()


def test_a_jalali_date_in_persian_digits_for_one_province(day_storage: Path, make_env) -> None:  # type: ignore[no-untyped-def]
    done = run_ivr(make_env(day_storage), "report", "--date", "۱۴۰۵/۰۹/۰۶", "--province", "qom")
    assert "7 calls, 2 new tickets, 3 overdue" in done.stdout
    folder = day_storage / "reports" / "1405-09-06" / "qom"
    assert {p.name for p in folder.iterdir()} == {"report.html", "report.pdf", "calls.csv"}
    assert not (day_storage / "reports" / "1405-09-06" / "national").exists()


def test_an_iso_date_nationally_gives_the_same_figures_twice(day_storage: Path, make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(day_storage)
    first = run_ivr(env, "report", "--date", DAY.isoformat(), "--national")
    again = run_ivr(env, "report", "--date", "1405-09-06", "--national")
    assert "8 calls, 3 new tickets, 4 overdue" in first.stdout
    assert first.stdout == again.stdout


def test_without_a_scope_every_province_and_the_nation(day_storage: Path, make_env) -> None:  # type: ignore[no-untyped-def]
    done = run_ivr(make_env(day_storage), "report", "--date", "1405-09-06")
    assert len(done.stdout.splitlines()) == 3  # qom, tehran, national
    assert {p.name for p in (day_storage / "reports" / "1405-09-06").iterdir()} == {
        "qom",
        "tehran",
        "national",
    }


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--date", "1405-13-40"], "not a date"),
        (["--date", "yesterday"], "not a date"),
        (["--date", "1405-09-06", "--province", "atlantis"], "unknown province"),
        (["--date", "1405-09-06", "--province", "qom", "--national"], "not both"),
        ([], "--date"),
    ],
)
def test_wrong_input_is_one_line(day_storage: Path, make_env, args: list[str], said: str) -> None:  # type: ignore[no-untyped-def]
    done = run_ivr(make_env(day_storage), "report", *args, check=False)
    assert done.returncode != 0
    assert said in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (day_storage / "reports").exists()


def test_send_mails_the_province_report_with_pdf_and_csv(
    day_storage: Path,
    mailbox: Mailbox,
    make_env,  # type: ignore[no-untyped-def]
) -> None:
    env = make_env(day_storage, smtp_url=mailbox.url, mail_from="124@example.org")
    done = run_ivr(env, "report", "--date", "1405-09-06", "--province", "qom", "--send")
    assert "mailed to 2" in done.stdout and "2 mails handed to SMTP" in done.stdout
    assert mailbox.recipients() == ["qom1@example.org", "qom2@example.org"]
    message = mailbox.received[0].message
    assert "۱۴۰۵/۰۹/۰۶" in str(message["Subject"])
    html = message.get_body(("html",))
    assert html is not None
    body = html.get_content()
    assert 'dir="rtl"' in body and "<td>۷</td>" in body  # the key figures in the body
    files = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(files) == {"report.pdf", "calls.csv"}
    assert files["report.pdf"].get_content_type() == "application/pdf"
    assert files["report.pdf"].get_content().startswith(b"%PDF")
    csv_text = files["calls.csv"].get_content()
    if isinstance(csv_text, bytes):
        csv_text = csv_text.decode("utf-8-sig")
    assert len(csv_text.strip().splitlines()) == 1 + 7
