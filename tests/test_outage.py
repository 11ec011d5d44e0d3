"""A confirmed ticket is never lost: the database goes away while the caller is on the line."""

from __future__ import annotations

import wave
from pathlib import Path

from ivr.prompts import load_catalog
from ivr.services import build_services
from ivr.settings import Settings
from ivr.telephony.terminal import TerminalPhone
from ivr.tickets.db import upgrade
from ivr.tickets.tracking import is_valid_tracking

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


def _voice(path: Path, seconds: float = 3.0) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x10\x00\xf0\xff" * int(4000 * seconds))
    return path


def test_ticket_confirmed_while_the_database_is_down_is_spooled_then_stored(
    tmp_path: Path,
) -> None:
    db_dir = tmp_path / "db"
    settings = Settings(
        storage_dir=tmp_path / "storage",
        prompts_dir=PROMPTS,
        database_url=f"sqlite:///{db_dir / 'ivr.db'}",
    )
    upgrade(settings.db_url)
    services = build_services(settings)
    texts = {pid: prompt.text for pid, prompt in load_catalog(PROMPTS).items()}
    summary = texts["summary.intro"]

    def listen(line: str) -> None:
        """The moment the summary is read, the database server goes away."""
        if line.startswith(summary) and db_dir.exists():
            services.tickets.engine.dispose()
            db_dir.rename(tmp_path / "db-away")

    phone = TerminalPhone(
        services,
        settings,
        texts,
        keys=["1", "3", "2", "1", "#", "1"],
        recording=_voice(tmp_path / "voice.wav"),
        caller="09121234567",
        say=listen,
    )
    result = phone.run()

    # The caller heard a real tracking number, although nothing could be written.
    assert result.tracking is not None and is_valid_tracking(result.tracking)
    spooled = list(settings.spool_dir.glob("*.json"))
    assert len(spooled) == 1

    (tmp_path / "db-away").rename(db_dir)
    assert services.tickets.replay_spool() == 1
    assert services.tickets.replay_spool() == 0
    assert not list(settings.spool_dir.glob("*.json"))

    view = services.tickets.get(result.tracking)
    assert view is not None
    assert (view.category, view.callback_number, view.channel) == (
        "trade",
        "09121234567",
        "terminal",
    )
    assert view.recording_path and Path(view.recording_path).is_file()
    assert view.due_at is not None  # the deadline, too, survived the outage
