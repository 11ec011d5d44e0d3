"""Tests that need a Debian program (chromium, ffmpeg, pdffonts…) or the test PBX skip without it
on a developer's machine, and fail instead when ``IVR_TEST_REQUIRE_TOOLS=1`` (or, for the PBX,
``IVR_TEST_REQUIRE_PBX=1``; CI sets both, having installed them): a missing package must not
pass CI as a row of skips."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRED = os.environ.get("IVR_TEST_REQUIRE_TOOLS", "") not in ("", "0")
PBX_REQUIRED = os.environ.get("IVR_TEST_REQUIRE_PBX", "") not in ("", "0")


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


def need_pbx() -> None:
    """Skip (or, when required, fail) the calling fixture unless a test PBX can run here."""
    from ivr.devtools.testpbx import cannot_run_reason

    reason = cannot_run_reason()
    if not reason:
        return
    if PBX_REQUIRED:
        pytest.fail(f"IVR_TEST_REQUIRE_PBX is set but {reason}")
    pytest.skip(f"no test PBX here: {reason}")
