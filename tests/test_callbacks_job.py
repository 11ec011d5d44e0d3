"""The scheduler's callback job: its spec, and which dialer the settings choose."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from ivr import scheduler as sched
from ivr.callbacks import job
from ivr.settings import Settings
from ivr.tickets.db import make_engine, upgrade


def test_the_callback_job_runs_every_few_seconds_with_a_lock_of_its_own() -> None:
    specs = {s.id: s for s in sched.JOBS}
    spec = specs[sched.CALLBACK_JOB]
    assert spec.run is sched.callback_dispatch
    trigger = spec.schedule(Settings(callback_dispatch_seconds=3))
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval.total_seconds() == 3
    keys = [s.lock_key for s in sched.JOBS]  # PostgreSQL's per-job advisory locks
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("settings", "kind"),
    [
        ({}, "off"),
        ({"ami_username": "ivr124", "ami_secret": "s3cret"}, "asterisk"),
        ({"ami_username": "ivr124", "ami_secret": "s3cret", "callback_dialer": "off"}, "off"),
        ({"callback_dialer": "twilio"}, "twilio"),
    ],
)
def test_which_dialer_the_settings_choose(settings: dict[str, str], kind: str) -> None:
    assert job.dialer_kind(Settings(**settings)) == kind  # type: ignore[arg-type]


def test_without_a_dialer_the_job_says_so_once_and_places_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    upgrade(url)
    engine = make_engine(url)
    monkeypatch.setattr(job, "_said", set())
    try:
        with caplog.at_level(logging.WARNING, logger="ivr.callbacks.job"):
            assert job.run(engine, Settings(database_url=url)) is None
            assert job.run(engine, Settings(database_url=url)) is None
        assert caplog.text.count("no dialer configured") == 1
    finally:
        engine.dispose()
        job.close()


def test_a_wrong_dialer_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="callback_dialer"):
        Settings(callback_dialer="sip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="IVR_CALLBACK_DIAL must contain"):
        Settings(callback_dial="PJSIP/trunk")
    with pytest.raises(ValueError, match="callback_attempts"):
        Settings(callback_attempts=0)
