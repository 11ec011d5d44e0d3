"""The called number chooses the province: the ``numbers`` of each province file, one function
that normalises what networks deliver, and a provinces folder a deployment (or a test) can move.

The in-process call here writes a real ticket in a real SQLite database through the same
session code as Twilio and Asterisk; the same is proven over HTTP in test_twilio_calls.py and
on the real PBX in tests/asterisk/test_asterisk_flow.py.
"""

from __future__ import annotations

import shutil
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.flow import menus as m
from ivr.prompts import load_catalog
from ivr.provinces import (
    PACKAGE_DIR,
    ProvinceError,
    all_provinces,
    check_provinces,
    load_province,
    normalize_number,
    place_prompts,
    province_for_number,
)
from ivr.services import build_services
from ivr.settings import Settings, get_settings
from ivr.telephony.terminal import TerminalPhone
from ivr.tickets.db import upgrade

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
MARKAZI = """\
name = "مرکزی"
numbers = ["086124", "+98 86 3312 4000"]

[[towns]]
key = "1"
id = "kheirabad"
name = "شهرک صنعتی خیرآباد"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Qom as shipped, plus a second province."""
    path = tmp_path / "provinces"
    path.mkdir()
    shutil.copy(PACKAGE_DIR / "qom.toml", path / "qom.toml")
    (path / "markazi.toml").write_text(MARKAZI, encoding="utf-8")
    return path


@pytest.fixture
def provinces_in_use(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``IVR_PROVINCES_DIR`` pointing at ``folder`` for this process, as ``ivr serve`` reads it."""
    monkeypatch.setenv("IVR_PROVINCES_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    monkeypatch.delenv("IVR_PROVINCES_DIR")
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("delivered", "normalised"),
    [
        ("025124", "25124"),
        ("25124", "25124"),
        ("+9825124", "25124"),
        ("009825124", "25124"),
        ("+98 25 124", "25124"),
        ("025-124", "25124"),
        ("۰۲۵۱۲۴", "25124"),
        ("٠٢٥١٢٤", "25124"),
        ("sip:025124@pbx.example", "25124"),
        ("124", "124"),
        ("+4420124", "+4420124"),
        ("", ""),
        (None, ""),
        ("anonymous", ""),
    ],
)
def test_called_numbers_are_compared_in_one_form(delivered, normalised):
    assert normalize_number(delivered) == normalised


@pytest.mark.parametrize(
    ("called", "province"),
    [
        ("086124", "markazi"),
        ("+9886124", "markazi"),
        ("۰۸۶۱۲۴", "markazi"),
        ("08633124000", "markazi"),
        ("025124", "qom"),
        ("+982537124", "qom"),
        ("124", "tehran"),  # what callers dial inside a province: the node's own
        ("0211234567", "tehran"),
        ("+4420124", "tehran"),  # +44 20124 is not Iran's 020124
        (None, "tehran"),
        ("", "tehran"),
    ],
)
def test_the_province_claiming_the_number_wins_else_the_default(folder, called, province):
    assert province_for_number(called, "tehran", folder) == province


def test_the_shipped_qom_file_claims_its_numbers():
    assert province_for_number("025124", "elsewhere") == "qom"
    assert province_for_number("02537124", "elsewhere") == "qom"
    assert province_for_number("124", "elsewhere") == "elsewhere"
    assert load_province("qom").numbers == ("25124", "2537124")


def test_a_number_claimed_by_two_provinces_is_refused_with_both_names(folder):
    (folder / "isfahan.toml").write_text('name = "اصفهان"\nnumbers = ["0 86 124"]\n', "utf-8")
    with pytest.raises(ProvinceError, match="86124 is claimed by both isfahan and markazi"):
        province_for_number("031124", "qom", folder)


def test_an_unknown_or_broken_province_says_which_and_what_is_known(folder):
    with pytest.raises(
        ProvinceError, match=r"unknown province 'tehran' .*known: markazi, qom"
    ) as e:
        load_province("tehran", folder)
    assert str(e.value).startswith("unknown province")  # one clear line, not a quoted repr
    with pytest.raises(ProvinceError, match="unknown province"):
        load_province("../qom", folder)
    (folder / "broken.toml").write_text('numbers = ["1"]\n', "utf-8")  # no name
    with pytest.raises(ProvinceError, match=r"broken\.toml: not a usable province file"):
        load_province("broken", folder)


def test_the_folder_setting_moves_menus_and_prompts_together(provinces_in_use):
    assert [p.code for p in all_provinces()] == ["markazi", "qom"]
    place = m.menus_for("markazi")["place"]
    assert isinstance(place, m.Menu)
    assert place.prompts[:3] == ("place.intro", "place.markazi.kheirabad", "key.1")
    assert "8" not in place.choices  # no zones in this province: no zones key
    assert place_prompts()["place.markazi.kheirabad"] == "شهرک صنعتی خیرآباد"
    assert "place.markazi.kheirabad" in load_catalog(PROMPTS)
    assert "place.qom.shokouhieh" in load_catalog(PROMPTS)


def test_a_changed_folder_is_never_served_from_a_stale_cache(
    provinces_in_use, tmp_path, monkeypatch
):
    assert isinstance(m.menus_for("markazi")["place"], m.Menu)
    other = tmp_path / "other"
    other.mkdir()
    (other / "markazi.toml").write_text(
        MARKAZI.replace("kheirabad", "eibakabad").replace("خیرآباد", "ایبک‌آباد"), "utf-8"
    )
    (other / "qom.toml").write_text((PACKAGE_DIR / "qom.toml").read_text("utf-8"), "utf-8")
    monkeypatch.setenv("IVR_PROVINCES_DIR", str(other))
    get_settings.cache_clear()
    place = m.menus_for("markazi")["place"]
    assert isinstance(place, m.Menu)
    assert "place.markazi.eibakabad" in place.prompts


def _voice(path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x10\x00\xf0\xff" * 12000)
    return path


@pytest.mark.parametrize(
    ("called", "province", "place"),
    [("086124", "markazi", "kheirabad"), ("124", "qom", "shokouhieh")],
)
def test_a_call_to_the_second_provinces_number_gets_its_places(
    provinces_in_use, tmp_path, called, province, place
):
    settings = Settings(storage_dir=tmp_path / "storage", prompts_dir=PROMPTS, database_url="")
    upgrade(settings.db_url)
    services = build_services(settings)
    texts = {pid: p.text for pid, p in load_catalog(PROMPTS).items()}
    phone = TerminalPhone(
        services,
        settings,
        texts,
        keys=["1", "1", "1", "2", "1", "#", "1"],  # industry, the first town, ... register
        recording=_voice(tmp_path / "voice.wav"),
        called=called,
        say=lambda _line: None,
    )
    result = phone.run()
    assert result.tracking is not None, result.transcript
    assert texts[f"place.{province}.{place}"] in "\n".join(result.transcript)
    view = services.tickets.get(result.tracking)
    assert view is not None and (view.province, view.place) == (province, place)
    with services.calls.engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT province, called FROM call WHERE external_id = ?", (result.external_id,)
        ).one()
    assert tuple(row) == (province, called)


def test_a_folder_a_server_cannot_answer_from_is_refused_before_the_first_call(folder, tmp_path):
    assert [p.code for p in check_provinces("qom", folder)] == ["markazi", "qom"]
    assert [p.code for p in check_provinces("qom")] == ["qom"]  # the package's own folder
    with pytest.raises(ProvinceError, match="unknown province 'tehran'"):
        check_provinces("tehran", folder)
    with pytest.raises(ProvinceError, match="is not a folder"):
        check_provinces("qom", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProvinceError, match="holds no province file"):
        check_provinces("qom", tmp_path / "empty")
    clash = tmp_path / "clash"
    shutil.copytree(folder, clash)
    (clash / "isfahan.toml").write_text('name = "اصفهان"\nnumbers = ["025124"]\n', "utf-8")
    with pytest.raises(ProvinceError, match="claimed by both"):
        check_provinces("qom", clash)
