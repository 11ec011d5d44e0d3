"""Every setting is checked when a command starts: a wrong one stops ``ivr serve`` (and any other
command) with one clear line and a non-zero exit, before a thread or a port is opened.

Run as people run it: the real ``ivr`` command with the variable in its environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from ivr.settings import SECRET_FIELDS, Settings, describe_error, unknown_variables

if TYPE_CHECKING:
    from collections.abc import Callable

PROJECT_ROOT = Path(__file__).resolve().parents[1]

BAD = [
    # variable, value, words the one line must contain
    ("scheduler_report_time", "25:99", "HH:MM"),
    ("scheduler_report_time", "9pm", "HH:MM"),
    ("web_port", "-1", "greater than or equal to 1"),
    ("agi_port", "70000", "less than or equal to 65535"),
    ("ami_port", "five", "valid integer"),
    ("province", "atlantis", "no such province 'atlantis'"),
    ("province", "../qom", "no such province"),
    ("database_url", "mysql://u@h/db", "only SQLite and PostgreSQL"),
    ("database_url", "foo://u@h/db", "only SQLite and PostgreSQL"),  # no dialect of that name
    ("database_url", "not a url", "not a database URL"),
    ("database_url", "postgresql+asyncpg://u@h/db", "through psycopg"),
    ("smtp_url", "http://mail.example.org", "smtp://"),
    ("smtp_url", "smtp://mail.example.org:99999", "port"),
    ("public_url", "ivr.example.org", "http:// or https://"),
    ("mail_from", "nobody", "e-mail address"),
    ("scheduler_watch_seconds", "0", "greater than 0"),
    ("scheduler_retry_seconds", "-5", "greater than 0"),
    ("escalation_level2_days", "0", "greater than or equal to 1"),
    ("node_name", "node one", "letters, digits"),
    ("agent_queue", "", "letters, digits"),
    ("web_host", "", "host name"),
    ("twilio_insecure_dev", "maybe", "valid boolean"),
    ("log_level", "loud", "'debug', 'info', 'warning' or 'error'"),
    ("prompts_dir", "/nonexistent/prompts", "no prompt catalogue"),
]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """The ``ivr`` entry point in this process, with ``IVR_*`` from ``settings`` only:
    ``cli(args, **settings) -> (status, stdout, stderr)``."""
    from ivr import cli as ivr_cli
    from ivr.settings import get_settings

    def run(*args: str, **settings: str) -> tuple[int, str, str]:
        for name in [n for n in os.environ if n.startswith("IVR_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("IVR_STORAGE_DIR", str(tmp_path / "storage"))
        for name, value in settings.items():
            monkeypatch.setenv(f"IVR_{name.upper()}", value)
        get_settings.cache_clear()
        try:
            status = ivr_cli.run(list(args))
        finally:
            get_settings.cache_clear()
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


@pytest.mark.parametrize(("name", "value", "words"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_a_bad_setting_is_one_line_and_a_non_zero_exit(
    name: str, value: str, words: str, cli: Callable[..., tuple[int, str, str]]
) -> None:
    status, out, err = cli("speak", "number", "5", **{name: value})
    assert status == 1
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"ivr: bad setting IVR_{name.upper()}")
    assert words in line


def test_good_settings_run_the_command(cli: Callable[..., tuple[int, str, str]]) -> None:
    status, out, err = cli(
        "speak", "number", "5", scheduler_report_time="06:30", web_port="65535", province="qom"
    )
    assert (status, out.strip(), err) == (0, "پنج", "")


def test_serve_stops_at_start_instead_of_running_without_its_scheduler(
    ivr_cli: Callable[..., object],
) -> None:
    """The case the issue names: the report time used to kill only the scheduler thread."""
    done = ivr_cli("serve", "--port", "1", check=False, scheduler_report_time="25:99", timeout=30)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ivr: bad setting IVR_SCHEDULER_REPORT_TIME='25:99': a time of day is needed, HH:MM "
        "from 00:00 to 23:59"
    ]


def test_every_bad_setting_is_named_in_the_one_line(ivr_cli: Callable[..., object]) -> None:
    done = ivr_cli("tickets", "list", check=False, web_port="0", province="nowhere")
    (line,) = done.stderr.splitlines()
    assert "IVR_WEB_PORT='0'" in line and "IVR_PROVINCE='nowhere'" in line


def test_a_storage_dir_that_is_a_file(tmp_path: Path, ivr_cli: Callable[..., object]) -> None:
    a_file = tmp_path / "storage-file"
    a_file.write_text("")
    done = ivr_cli("speak", "number", "5", check=False, storage_dir=str(a_file))
    assert done.returncode == 1
    assert done.stderr.strip().endswith("is a file, not a folder")


def test_an_ami_login_needs_its_secret(ivr_cli: Callable[..., object]) -> None:
    done = ivr_cli("speak", "number", "5", check=False, ami_username="ivr", ami_secret=None)
    assert done.stderr.strip() == (
        "ivr: bad setting IVR_AMI_USERNAME is set but IVR_AMI_SECRET is not"
    )


def test_passwords_stay_out_of_the_message(ivr_cli: Callable[..., object]) -> None:
    done = ivr_cli(
        "speak",
        "number",
        "5",
        check=False,
        database_url="postgresql+pg8000://ivr:s3cret-pw@db.example.org/ivr",
        smtp_url="smtp://mail:s3cret-mail@:25",
    )
    assert done.returncode == 1
    assert "IVR_DATABASE_URL" in done.stderr and "IVR_SMTP_URL" in done.stderr
    assert "s3cret" not in done.stderr


def test_postgresql_urls_mean_psycopg(tmp_path: Path) -> None:
    for given in ("postgresql://ivr:pw@db/ivr", "postgresql+psycopg://ivr:pw@db/ivr"):
        settings = Settings(storage_dir=tmp_path, database_url=given)
        assert settings.db_url == "postgresql+psycopg://ivr:pw@db/ivr"
    assert Settings(storage_dir=tmp_path).db_url == f"sqlite:///{tmp_path / 'ivr.db'}"


def test_relative_folders_are_fixed_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage defaults to ./storage of the folder the command starts in, made absolute once,
    and rendered prompts go inside it unless told otherwise."""
    monkeypatch.chdir(tmp_path)
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"IVR_{name.upper()}", raising=False)
    settings = Settings()
    assert settings.storage_dir == tmp_path / "storage"
    assert settings.generated_prompts_dir == tmp_path / "storage" / "prompts"
    assert (settings.prompts_dir / "catalog.toml").is_file()
    moved = Settings(storage_dir=Path("elsewhere"))
    assert moved.generated_prompts_dir == tmp_path / "elsewhere" / "prompts"
    told = Settings(generated_prompts_dir=Path("audio"))
    assert told.generated_prompts_dir == tmp_path / "audio"


def test_describe_error_hides_secrets() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(twilio_auth_token=["not", "a", "string"])  # type: ignore[arg-type]
    line = describe_error(caught.value)
    assert line.startswith("bad setting IVR_TWILIO_AUTH_TOKEN:")
    assert "not" not in line.split(":", 1)[0]
    assert {"twilio_auth_token", "ami_secret", "secret_key"} <= SECRET_FIELDS


def test_an_unknown_variable_is_warned_about(ivr_cli: Callable[..., object]) -> None:
    done = ivr_cli("speak", "number", "5", web_prot="9000")
    assert done.stdout.strip() == "پنج"
    assert done.stderr.strip() == "ivr: warning: IVR_WEB_PROT is not a setting of ivr124 (ignored)"
    assert unknown_variables({"IVR_WEB_PORT": "1", "IVR_TEST_POSTGRES_URL": "x"}) == []


def test_ivr_settings_shows_every_setting_and_hides_secrets(
    ivr_cli: Callable[..., object],
) -> None:
    done = ivr_cli(
        "settings",
        secret_key="a-very-secret-key",
        database_url="postgresql://ivr:db-password@db.example.org/ivr",
        web_port="9124",
    )
    shown = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert set(shown) == {f"IVR_{name.upper()}" for name in Settings.model_fields}
    assert shown["IVR_WEB_PORT"] == "9124"
    assert shown["IVR_SECRET_KEY"] == "(set)"
    assert shown["IVR_AMI_SECRET"] == ""
    assert shown["IVR_DATABASE_URL"] == "postgresql+psycopg://ivr:***@db.example.org/ivr"
    assert "a-very-secret-key" not in done.stdout and "db-password" not in done.stdout


def test_the_readme_lists_every_setting() -> None:
    """The configuration table stays true: every field of Settings has its row."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration") :]
    table = table[: table.index("\n## ", 1)]
    listed = set(re.findall(r"`(IVR_[A-Z0-9_]+)`", table))
    assert {f"IVR_{name.upper()}" for name in Settings.model_fields} <= listed
    assert "/healthz" in readme
