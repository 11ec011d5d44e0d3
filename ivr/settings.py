"""Every setting in one place, read from ``IVR_*`` environment variables.

Defaults are safe for a laptop: SQLite in ``storage/``, web on 127.0.0.1:8124, FastAGI on
127.0.0.1:4573, Twilio routes closed until a token (or the explicit development switch) is set.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from ivr import PROJECT_ROOT


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

    twilio_auth_token: str = ""
    twilio_account_sid: str = ""
    twilio_insecure_dev: bool = False
    """Development only: accept unsigned Twilio requests when no auth token is set."""

    agent_queue: str = "124-agents"
    node_name: str = "node1"

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
