"""Tests that need a Debian program (chromium, ffmpeg, pdffonts…) skip without it on a
developer's machine, and fail instead when ``IVR_TEST_REQUIRE_TOOLS=1`` (CI sets it, having
installed them): a missing package must not pass CI as a row of skips."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRED = os.environ.get("IVR_TEST_REQUIRE_TOOLS", "") not in ("", "0")


def missing(program: str) -> bool:
    return shutil.which(program) is None and not os.path.exists(program)


def need(program: str, package: str) -> None:
    """Skip (or, when required, fail) the calling test unless ``program`` is installed."""
    if not missing(program):
        return
    reason = f"{program} is not installed (apt-get install {package})"
    if REQUIRED:
        pytest.fail(f"IVR_TEST_REQUIRE_TOOLS is set but {reason}")
    pytest.skip(reason)
