"""Every setting in one place, read from ``IVR_*`` environment variables.

Defaults are safe for a laptop: SQLite in ``storage/``, web on 127.0.0.1:8124, FastAGI on
127.0.0.1:4573, Twilio routes closed until a token (or the explicit development switch) is set.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    """Which province's places this node offers (a file in ``provinces_dir``) when the called
    number is not one a province file claims."""
    provinces_dir: Path = Path(__file__).parent / "provinces"
    """Where the province files (``<code>.toml``: places and the numbers that reach each
    province's 124) are read from; default the package's own folder."""

    web_host: str = "127.0.0.1"
    web_port: int = 8124
    public_url: str = ""
    """The base URL Twilio sees (behind a proxy); empty means the request's own URL."""
    try_enabled: bool | None = None
    """The /try page (call 124 from a browser); unset: on only while the web server listens on
    loopback alone. Off elsewhere unless set to true (then open to anyone who reaches it)."""

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

    voice: Literal["", "mbrola-ir1", "espeak-fa"] = ""
    """The voice ``ivr prompts build`` renders with; empty: ``mbrola-ir1`` (clearer, not for sale
    without its author's permission) where installed, else ``espeak-fa``."""

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
