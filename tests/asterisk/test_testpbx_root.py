"""How the test PBX's root is built: never half-built at its final path (no root needed:
mmdebstrap is replaced by a script that only records its arguments)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ivr.devtools.testpbx import PbxError, TestPbx, build_root

FAKE_MMDEBSTRAP = """#!/bin/sh
# Records "suite target" and fakes a root unless the suite is listed in FAIL_SUITES.
for last; do :; done
target="$last"
suite=""
for a; do case "$a" in testing|unstable) suite="$a";; esac; done
echo "$suite $target" >> "$CALLS"
case " $FAIL_SUITES " in *" $suite "*) mkdir -p "$target/partial"; exit 1;; esac
mkdir -p "$target/usr/sbin" && touch "$target/usr/sbin/asterisk"
# What --include adds beyond Asterisk: the stock music on hold and libfaketime.
for a; do case "$a" in --include=*asterisk-moh-opsound-gsm*libfaketime*)
  mkdir -p "$target/usr/share/asterisk/moh" "$target/usr/lib/x86_64-linux-gnu/faketime"
  touch "$target/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";;
esac; done
"""


@pytest.fixture
def fake_mmdebstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "mmdebstrap"
    script.write_text(FAKE_MMDEBSTRAP)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CALLS", str(calls))
    monkeypatch.setenv("FAIL_SUITES", "")
    return calls


def test_builds_beside_the_root_then_renames(tmp_path, fake_mmdebstrap):
    root = tmp_path / "cache" / "asterisk-root"
    stale = root.parent / ".asterisk-root.building-999999999"  # a build that was killed
    (stale / "usr").mkdir(parents=True)

    build_root(root)

    suite, target = fake_mmdebstrap.read_text().split()
    assert suite == "testing"
    assert Path(target) != root and Path(target).parent == root.parent
    assert (root / "usr/sbin/asterisk").exists()
    assert not any(p.name.startswith(".asterisk-root.building") for p in root.parent.iterdir())
    # A finished root is reused as it is.
    assert TestPbx(root, tmp_path / "work").ensure_root() == 0.0


def test_falls_back_to_unstable(tmp_path, fake_mmdebstrap, monkeypatch):
    monkeypatch.setenv("FAIL_SUITES", "testing")
    root = tmp_path / "asterisk-root"
    build_root(root)
    assert [line.split()[0] for line in fake_mmdebstrap.read_text().splitlines()] == [
        "testing",
        "unstable",
    ]
    assert (root / "usr/sbin/asterisk").exists()


def test_a_failed_build_leaves_nothing_to_reuse(tmp_path, fake_mmdebstrap, monkeypatch):
    monkeypatch.setenv("FAIL_SUITES", "testing unstable")
    root = tmp_path / "asterisk-root"
    with pytest.raises(PbxError, match="could not build"):
        build_root(root)
    assert not root.exists()
    assert not any(p.name.startswith(".asterisk-root.building") for p in tmp_path.iterdir())
