"""Every setting in one place, read from ``IVR_*`` environment variables.

Defaults are safe for a laptop: SQLite in ``storage/``, web on 127.0.0.1:8124, FastAGI on
127.0.0.1:4573, Twilio routes closed until a token (or the explicit development switch) is set.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ivr import PROJECT_ROOT

_PROCESS_SECRET = secrets.token_hex(16)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IVR_", extra="ignore")

    storage_dir: Path = PROJECT_ROOT / "storage"
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite at ``storage_dir/ivr.db``."""

    province: str = "qom"
    """Which province's places this node offers (a file in ``ivr/provinces/``)."""

    web_host: str = "127.0.0.1"
    web_port: int = 8124
    public_url: str = ""
    """The base URL Twilio sees (behind a proxy); empty means the request's own URL."""

    agi_host: str = "127.0.0.1"
    agi_port: int = 4573

    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
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

    agent_queue: str = "124-agents"
    node_name: str = "node1"

    scheduler_enabled: bool = True
    """Whether ``ivr serve`` runs the scheduler too (``--no-scheduler`` turns it off once)."""
    scheduler_watch_seconds: float = 60
    """How often the overdue watch runs; tests make it a second."""
    scheduler_report_time: str = "21:00"
    """When the nightly report is made, Asia/Tehran time (HH:MM)."""
    scheduler_retry_seconds: float = 10
    """How often a follower tries the leader lock: a dead leader is replaced within this."""
    scheduler_check_seconds: float = 5
    """How often the leader checks that it still holds the lock."""

    smtp_url: str = ""
    """Where escalation mail goes: ``smtp://[user:pass@]host:port`` or ``smtps://…``; empty: the
    mails stay queued in the outbox until one is set."""
    mail_from: str = "124@localhost"
    escalation_level2_days: int = 3
    """Working days a ticket stays open at level 1 (province) before level 2 (the ministry)."""

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
