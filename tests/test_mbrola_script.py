""".ci/mbrola.sh reads the mirror the machine already uses and writes contrib/non-free for it.

Run with ``--print-entry`` on apt folders made here, so the machine's own apt is not touched."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "mbrola.sh"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def entry_for(apt_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "--print-entry"],
        env={"PATH": "/usr/bin:/bin", "MBROLA_APT_DIR": str(apt_dir)},
        capture_output=True,
        text=True,
        check=False,
    )


def fields(text: str) -> dict[str, str]:
    return dict(
        line.split(": ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


@pytest.fixture
def apt_dir(tmp_path: Path) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_deb822_the_main_archive_not_the_security_one(apt_dir: Path) -> None:
    (apt_dir / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        f"Signed-By: {KEYRING}\n"
        "\n"
        "Types: deb\n"
        "# a comment inside the stanza\n"
        "URIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        f"Signed-By: {KEYRING}\n",
        encoding="utf-8",
    )
    done = entry_for(apt_dir)
    assert done.returncode == 0, done.stderr
    assert fields(done.stdout) == {
        "Types": "deb",
        "URIs": "http://mirror.example/debian",
        "Suites": "bookworm bookworm-updates",
        "Components": "contrib non-free",
        "Signed-By": KEYRING,
    }


def test_a_disabled_stanza_and_an_inline_key_are_not_copied(apt_dir: Path) -> None:
    (apt_dir / "sources.list.d" / "a.sources").write_text(
        "Enabled: no\nTypes: deb\nURIs: http://old.example/debian\nSuites: bullseye\n"
        "Components: main\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian\nSuites: trixie\n"
        "Components: main contrib\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n",
        encoding="utf-8",
    )
    done = entry_for(apt_dir)
    assert done.returncode == 0, done.stderr
    assert fields(done.stdout) == {
        "Types": "deb",
        "URIs": "http://mirror.example/debian",
        "Suites": "trixie",
        "Components": "contrib non-free",
    }


def test_one_line_sources_list_with_options(apt_dir: Path) -> None:
    (apt_dir / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb http://mirror.example/debian-security bookworm-security main\n"
        f"deb [arch=amd64 signed-by={KEYRING}] http://mirror.example/debian bookworm main\n",
        encoding="utf-8",
    )
    done = entry_for(apt_dir)
    assert done.returncode == 0, done.stderr
    assert fields(done.stdout) == {
        "Types": "deb",
        "URIs": "http://mirror.example/debian",
        "Suites": "bookworm",
        "Components": "contrib non-free",
        "Signed-By": KEYRING,
    }


def test_no_mirror_is_one_line_and_a_failure_only_for_print_entry(apt_dir: Path) -> None:
    done = entry_for(apt_dir)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"mbrola.sh: no Debian mirror with 'main' found in {apt_dir}"
    ]


def test_the_script_names_no_host() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    assert "debian.org" not in text
