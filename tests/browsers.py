"""Debian's Chromium, headless, driven by PyPI's playwright (its own browser download cannot
work here): one way to start it for every page test, and where its screenshots go."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from needs import need

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ("--no-sandbox", "--disable-gpu")
OUTPUT = Path(__file__).resolve().parents[1] / "storage" / "test-output"


@contextlib.contextmanager
def chromium(
    request: pytest.FixtureRequest, screenshots: Path, extra_args: Sequence[str] = ()
) -> Iterator[Browser]:
    """The browser (skipped, or failed under IVR_TEST_REQUIRE_TOOLS, without Chromium); says
    once where this module's screenshots are kept."""
    need(str(CHROMIUM), "chromium")
    from playwright.sync_api import sync_playwright

    screenshots.mkdir(parents=True, exist_ok=True)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n{screenshots.name} screenshots: {screenshots}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*ARGS, *extra_args]
        )
        try:
            yield launched
        finally:
            launched.close()
