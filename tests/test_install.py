"""``pip install .`` gives a working ``ivr`` from any folder: a wheel built from the checkout,
installed into a fresh virtual environment, run from an empty folder.

The wheel is built from the files git tracks (copied to a temporary folder), so nothing
git-ignored — rendered audio, a database, an editable install's finder — can make it pass. The
fresh environment gets the wheel with ``--no-deps``; its dependencies come from this test run's
own environment through a ``.pth`` line (only the folder is added: that environment's editable
install of ivr124 is a ``.pth`` *inside* it, which Python does not follow), so the ``ivr``
imported is the wheel's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"{args}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    )
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built from the checkout's tracked files; its bin folder."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    tracked = run(
        "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=PROJECT_ROOT
    ).stdout.split("\0")
    for name in filter(None, tracked):
        src = PROJECT_ROOT / name
        if src.is_file():
            dest = source / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes())
    wheels = base / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, source, cwd=base)
    (wheel,) = wheels.glob("ivr124-*.whl")

    fresh = base / "venv"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel,
        cwd=base)  # fmt: skip
    site = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=base
        ).stdout.strip()
    )
    (site / "_ivr_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return fresh / "bin"


@pytest.fixture
def empty_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "anywhere"
    folder.mkdir()
    return folder


def clean_env() -> dict[str, str]:
    """No IVR_* settings, no PYTHONPATH: only what an operator's shell would have."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("IVR_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }


def test_the_ivr_imported_is_the_wheels(installed: Path, empty_folder: Path) -> None:
    done = run(
        installed / "python",
        "-c",
        "import ivr, ivr.cli; print(ivr.__file__, ivr.CATALOG_DIR, ivr.DIALPLANS_DIR)",
        cwd=empty_folder,
        env=clean_env(),
    )
    module, catalog, dialplans = (Path(line) for line in done.stdout.split())
    site = installed.parent / "lib"
    assert site in module.parents and PROJECT_ROOT not in module.parents
    assert (catalog / "catalog.toml").is_file() and (catalog / "fragments.toml").is_file()
    assert catalog == module.parent / "catalog"
    assert (dialplans / "extensions.conf").is_file()
    assert (dialplans / "test-pbx" / "asterisk.conf").is_file()
    assert not list(catalog.rglob("*.wav")), "no audio ships in the wheel"


def test_speak_and_deadline_from_an_empty_folder(installed: Path, empty_folder: Path) -> None:
    env = clean_env()
    spoken = run(installed / "ivr", "speak", "number", "1587", cwd=empty_folder, env=env)
    assert spoken.stdout.strip() == "هزار و پانصد و هشتاد و هفت"
    assert spoken.stderr == ""

    deadline = run(
        installed / "ivr", "calendar", "deadline", "1405/01/05", "10", cwd=empty_folder, env=env
    )
    # The same answer as the checkout's own `ivr` gives, from another empty folder.
    elsewhere = empty_folder.parent / "elsewhere"
    elsewhere.mkdir()
    checkout = Path(sys.executable).with_name("ivr")
    expected = run(checkout, "calendar", "deadline", "1405/01/05", "10", cwd=elsewhere, env=env)
    assert deadline.stdout == expected.stdout
    assert deadline.stdout.startswith("1405/01/") and " Tehran " in deadline.stdout
    assert deadline.stdout.split()[0] > "1405/01/05"
    # The embedded database was created where the command ran, and upgraded by itself.
    assert (empty_folder / "storage" / "ivr.db").is_file()


def test_prompts_render_into_the_folder_not_the_package(
    installed: Path, empty_folder: Path
) -> None:
    env = clean_env()
    built = run(installed / "ivr", "prompts", "build", cwd=empty_folder, env=env)
    assert " rendered " in built.stdout
    rendered = empty_folder / "storage" / "prompts"
    assert (rendered / "manifest.json").is_file()
    assert (rendered / "fa" / "main-menu.wav").is_file()
    package = installed.parent / "lib"
    assert not list(package.rglob("*.wav")), "nothing is written into the installed package"
