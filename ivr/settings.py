"""Every setting in one place, read from ``IVR_*`` environment variables and checked at start.

Defaults are safe for a laptop: storage (SQLite, recordings, rendered prompts) in ``./storage``
of the folder the command runs in, the prompt catalogue shipped with the package, web on
127.0.0.1:8124, FastAGI on 127.0.0.1:4573, Twilio routes closed until a token (or the explicit
development switch) is set. A value that cannot work (a port of -1, a report time of 25:99, a
province without a file, a URL of the wrong kind) is refused here, when the command starts,
rather than found later by a thread nobody watches: the CLI turns the error into one line.
"""

from __future__ import annotations

import os
import re
import secrets
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ivr import CATALOG_DIR

_PROCESS_SECRET = secrets.token_hex(16)
ENV_PREFIX = "IVR_"

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, le=86_400)]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PROVINCE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_REPORT_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
SECRET_FIELDS = frozenset({"twilio_auth_token", "ami_secret", "secret_key"})
"""Never echoed: not in error messages, not by ``ivr settings``."""
OTHER_VARIABLES = frozenset({"IVR_AGI_TIMINGS", "IVR_ASTERISK_ROOT"})
"""``IVR_*`` variables read outside this object (the AGI timing log, the test PBX's root)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    storage_dir: Path = Path("storage")
    """Database, recordings, spool, reports, rendered prompts; relative to the current folder."""
    prompts_dir: Path = CATALOG_DIR
    """The prompt catalogue (``*.toml``) and studio recordings (``fa/``); read, never written."""
    generated_prompts_dir: Path = Field(
        default_factory=lambda data: data.get("storage_dir", Path("storage")) / "prompts"
    )
    """Where ``ivr prompts build`` writes rendered audio and its manifest: a writable place,
    since the package's own folder may not be."""
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite at ``storage_dir/ivr.db``."""

    provinces_dir: Path = Path(__file__).parent / "provinces"
    """Where the province files (``<code>.toml``: places and the numbers that reach each
    province's 124) are read from; default the package's own folder."""
    province: str = "qom"
    """Which province's places this node offers (a file in ``provinces_dir``) when the called
    number is not one a province file claims."""

    web_host: str = "127.0.0.1"
    web_port: Port = 8124
    public_url: str = ""
    """The base URL Twilio sees (behind a proxy); empty means the request's own URL."""
    try_enabled: bool | None = None
    """The /try page (call 124 from a browser); unset: on only while the web server listens on
    loopback alone. Off elsewhere unless set to true (then open to anyone who reaches it)."""

    agi_host: str = "127.0.0.1"
    agi_port: Port = 4573
    agi_max_connections: int = Field(default=200, ge=1, le=10_000)
    """FastAGI connections open at once; the next is refused (and logged), and the dialplan
    hands that caller to an agent."""
    agi_env_seconds: Seconds = 5
    """How long a FastAGI client has for its whole environment (Asterisk sends it at once)."""
    agi_command_idle_seconds: Seconds = 60
    """How long an AGI reply may take beyond the command's own wait (a digit's timeout, a
    recording's length) before the call is given up."""

    ami_host: str = "127.0.0.1"
    ami_port: Port = 5038
    ami_username: str = ""
    """Asterisk's manager login (manager.conf); empty: no AMI, so no queue data in the call
    records (waits, abandons, which agent answered)."""
    ami_secret: str = ""

    twilio_auth_token: str = ""
    twilio_account_sid: str = ""
    twilio_insecure_dev: bool = False
    """Development only: accept unsigned Twilio requests when no auth token is set."""

    secret_key: str = ""
    """Signs links to callers' recordings; nodes behind one Twilio number must share it."""

    voice: Literal["", "mbrola-ir1", "espeak-fa"] = ""
    """The voice ``ivr prompts build`` renders with; empty: ``mbrola-ir1`` (clearer, not for sale
    without its author's permission) where installed, else ``espeak-fa``."""

    agent_queue: str = "124-agents"
    """The Asterisk queue (queues.conf) callers are handed to; Twilio uses the same name."""
    node_name: str = "node1"
    """This node's name in tracking-number blocks, the scheduler's logs and /healthz."""

    followup_tries_per_ticket: int = Field(default=5, ge=1, le=100)
    """Failed follow-up tries for one ticket in 24 h before only an agent can open it."""
    followup_tries_per_caller: int = Field(default=10, ge=1, le=1000)
    """Failed follow-up tries from one calling number in 24 h, whichever tickets."""

    scheduler_enabled: bool = True
    """Whether ``ivr serve`` runs the scheduler too (``--no-scheduler`` turns it off once)."""
    scheduler_watch_seconds: Seconds = 60
    """How often the overdue watch runs; tests make it a second."""
    scheduler_report_time: str = "23:30"
    """When the nightly report is mailed, Asia/Tehran time (HH:MM)."""
    report_check_seconds: Seconds = 60
    """How often the leader looks for a day whose report is due and not yet sent."""
    report_catchup_days: int = Field(default=7, ge=0, le=60)
    """How many missed days a leader still sends late (after an outage), oldest first."""
    report_service_level_seconds: float = Field(default=20.0, gt=0, le=3600)
    """The service level's threshold: answered within this many seconds of joining the queue."""
    scheduler_retry_seconds: Seconds = 10
    """How often a follower tries the leader lock: a dead leader is replaced within this."""
    scheduler_check_seconds: Seconds = 5
    """How often the leader checks that it still holds the lock."""

    smtp_url: str = ""
    """Where escalation mail goes: ``smtp://[user:pass@]host:port`` or ``smtps://…``; empty: the
    mails stay queued in the outbox until one is set."""
    mail_from: str = "124@localhost"
    escalation_level2_days: int = Field(default=3, ge=1, le=365)
    """Working days a ticket stays open at level 1 (province) before level 2 (the ministry)."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """How much ``ivr serve`` and ``ivr scheduler`` log; ``debug`` adds each job run."""

    desk_idle_seconds: Seconds = 1800
    """A desk session ends after this long without a request (30 minutes)."""
    desk_session_seconds: Seconds = 43_200
    """A desk session ends this long after login whatever happens (12 hours)."""
    desk_login_tries: int = Field(default=5, ge=1, le=1000)
    """Wrong passwords per user name and per address within the window before logins are
    refused (429) for the rest of it."""
    desk_login_window_seconds: Seconds = 900
    """The window wrong passwords are counted in (15 minutes)."""

    # -- checks -------------------------------------------------------------------------------

    @field_validator("storage_dir", "prompts_dir", "generated_prompts_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Resolved once at start, so a later change of folder cannot move the database."""
        path = value.expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} is a file, not a folder")
        return path

    @field_validator("prompts_dir")
    @classmethod
    def _has_catalog(cls, value: Path) -> Path:
        if not (value / "catalog.toml").is_file():
            raise ValueError(f"no prompt catalogue (catalog.toml) in {value}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("provinces_dir")
    @classmethod
    def _provinces_dir(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError("not a folder")
        return value

    @field_validator("province")
    @classmethod
    def _province(cls, value: str, info: ValidationInfo) -> str:
        """A province with a file; the folder usable, no number claimed twice."""
        from ivr.provinces import ProvinceError, check_provinces

        if not _PROVINCE.match(value):
            raise ValueError("no such province (a code like qom is needed)")
        folder = info.data.get("provinces_dir")
        if folder is None:  # the folder itself was refused: its own error says why
            return value
        try:
            check_provinces(value, folder)
        except ProvinceError as error:
            raise ValueError(
                str(error).strip("'\"").replace("unknown province", "no such province")
            ) from None
        return value

    @field_validator("web_host", "agi_host", "ami_host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value) or "/" in value:
            raise ValueError("a host name or IP address is needed")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("an http:// or https:// URL is needed")
        return value

    @field_validator("agent_queue", "node_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("1 to 64 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("scheduler_report_time")
    @classmethod
    def _report_time(cls, value: str) -> str:
        if not _REPORT_TIME.match(value):
            raise ValueError("a time of day is needed, HH:MM from 00:00 to 23:59")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            try:
                parts.port  # noqa: B018  (raises ValueError for a port out of range)
            except ValueError:
                raise ValueError("its port is not a number from 1 to 65535") from None
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                raise ValueError("smtp://[user:pass@]host[:port] or smtps://… is needed")
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        _name, address = parseaddr(value)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ValueError("an e-mail address is needed, e.g. 124@example.org")
        return value

    @model_validator(mode="after")
    def _ami_login(self) -> Settings:
        if self.ami_username and not self.ami_secret:
            raise ValueError("IVR_AMI_USERNAME is set but IVR_AMI_SECRET is not")
        return self

    # -- derived ------------------------------------------------------------------------------

    # Callbacks (ivr.callbacks): placed by the scheduler's leader through the agents' queue.
    callback_attempts: int = Field(default=3, ge=1, le=20)
    """Attempts (no answer, busy, failed) before a callback is marked failed."""
    callback_retry_minutes: float = Field(default=10, gt=0)
    """Spacing between a callback's attempts; the next one also waits for the agents' hours."""
    callback_dispatch_seconds: float = Field(default=5, gt=0)
    """How often the leader's dispatcher pass runs."""
    callback_lease_seconds: float = Field(default=120, gt=0)
    """An attempt nobody has seen alive for this long, with no trace of its call, is closed as
    interrupted (its dispatcher died)."""
    callback_hold_seconds: int = Field(default=900, ge=10)
    """The longest one stand-in holds a callback's place in the queue before it is replaced."""
    callback_ring_seconds: int = Field(default=30, ge=5, le=600)
    """How long the caller's phone rings on a callback."""
    callback_dialer: Literal["auto", "asterisk", "twilio", "off"] = "auto"
    """Who places callbacks: auto is Asterisk when IVR_AMI_USERNAME is set, else nobody."""
    callback_dial: str = "PJSIP/{number}@124-trunk"
    """Asterisk's dial string for the caller: {number} national (09121234567), {e164} +98…."""
    callback_caller_id: str = "124"
    """The caller ID a called-back caller sees."""
    twilio_api_base: str = "https://api.twilio.com"
    """Twilio's REST API; tests point it at a local stand-in."""
    twilio_from: str = ""
    """The Twilio number callbacks are placed from (E.164)."""
    twilio_timeout_seconds: float = Field(default=10, gt=0, le=60)
    """Bound on one Twilio REST request."""
    twilio_queue_announce_seconds: int = Field(default=30, ge=10, le=600)
    """From one announcement to the next in the Twilio agents' queue: the hold music after an
    announcement is cut to fill the rest (Asterisk's is announce-frequency in queues.conf)."""
    agents_always_open: bool = False
    """A desk that answers round the clock: callers are never told agents are off (the
    agents' hours file still governs callbacks). Tests set it so a call's path does not
    depend on the wall clock."""

    @field_validator("callback_dial")
    @classmethod
    def _dial_names_the_number(cls, value: str) -> str:
        if "{number}" not in value and "{e164}" not in value:
            raise ValueError("IVR_CALLBACK_DIAL must contain {number} or {e164}")
        return value

    @property
    def secret(self) -> str:
        """The signing key: IVR_SECRET_KEY, else the Twilio token, else one per process."""
        return self.secret_key or self.twilio_auth_token or _PROCESS_SECRET

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.storage_dir / 'ivr.db'}"

    @property
    def recordings_dir(self) -> Path:
        return self.storage_dir / "recordings"

    @property
    def spool_dir(self) -> Path:
        """Confirmed tickets wait here as JSON while the database is unreachable."""
        return self.storage_dir / "spool"

    @property
    def reports_dir(self) -> Path:
        return self.storage_dir / "reports"


def check_database_url(value: str) -> str:
    """SQLite or PostgreSQL through psycopg (``postgresql://`` is taken to mean that)."""
    if not value:
        return value
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError("not a database URL (sqlite:///path or postgresql://…)") from None
    backend = url.get_backend_name()
    if backend not in ("postgresql", "sqlite"):  # before the driver: naming it loads a dialect
        raise ValueError(f"only SQLite and PostgreSQL are supported, not {backend}")
    driver = url.get_driver_name()
    if backend == "postgresql":
        if driver not in ("psycopg", "psycopg2"):  # psycopg2 is SQLAlchemy's default name
            raise ValueError(f"PostgreSQL is reached through psycopg, not {driver}")
        if not url.database:
            raise ValueError("the URL names no database")
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if driver != "pysqlite":
        raise ValueError(f"SQLite is reached through Python's sqlite3, not {driver}")
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """``IVR_*`` names in the environment that no setting reads: usually a typing mistake."""
    environ = dict(os.environ) if environ is None else environ
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES
    return sorted(
        name
        for name in environ
        if name.startswith(ENV_PREFIX) and name not in known and not name.startswith("IVR_TEST_")
    )


def describe_error(error: ValidationError) -> str:
    """A validation error as one line naming each variable, its value (unless secret) and why."""
    parts = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        message = str(item["msg"]).removeprefix("Value error, ")
        if not field:  # a check across settings: its message names them
            parts.append(message)
            continue
        name = f"{ENV_PREFIX}{field.upper()}"
        shown = _shown(field, item.get("input"))
        parts.append(f"{name}{shown}: {message}")
    return "bad setting " + "; ".join(parts)


def _shown(field: str, value: Any) -> str:
    if value is None or field in SECRET_FIELDS or isinstance(value, dict):
        return ""
    text = str(value)
    if "@" in text and "://" in text:  # a URL with a login: its password stays out of logs
        return ""
    return f"={text!r}"
