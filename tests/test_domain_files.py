"""The categories, agencies and node-name files: what they drive, the clear errors for a bad one.

The changed-file tests point the loaders at a copy in a temporary folder (the installed file is
left alone) and check that the menu keys, the prompt catalogue, the SLA budgets and the ticket
service all follow it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr import agencies, categories
from ivr.calendar import SlaPolicy, load_policies
from ivr.datafile import DataFileError
from ivr.flow import menus
from ivr.flow.node_names import node_name, node_names
from ivr.flow.state import CallState
from ivr.prompts import AGENCIES_SOURCE, CATEGORIES_SOURCE, load_catalog
from ivr.provinces import provinces_dir

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
EXTRA = """
[[category]]
code = "energy"
key = "7"
name = "انرژی و سوخت"
asks_place = true
sla = { first_response_days = 3, resolution_days = 20 }
"""


@pytest.fixture
def categories_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the categories file that the loaders read instead of the installed one."""
    path = tmp_path / "categories.toml"
    path.write_text(categories.DEFAULT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(categories, "DEFAULT_FILE", path)
    categories._load.cache_clear()
    menus._menus.cache_clear()
    yield path
    monkeypatch.undo()
    categories._load.cache_clear()
    menus._menus.cache_clear()


def test_the_installed_categories_keep_the_menu_contract() -> None:
    found = categories.load_categories()
    assert {c.key: c.code for c in found.items} == {
        "1": "industry",
        "2": "mining",
        "3": "trade",
        "4": "consumer",
        "5": "permits",
        "6": "other",
    }
    assert [c.code for c in found.items if c.asks_place] == ["industry"]
    assert found.fallback == "other"
    choices = menus.menus_for("qom")["category"].choices  # type: ignore[union-attr]
    assert choices["1"].target == "place" and choices["4"].target == "describe"
    assert choices["4"].sets == (("category", "consumer"),)
    assert {"*", "9"} <= set(choices) and "7" not in choices


def test_catalogue_takes_category_and_agency_names_from_the_files() -> None:
    catalog = load_catalog(REPO_PROMPTS)
    for category in categories.load_categories().items:
        prompt = catalog[category.prompt_id]
        assert (prompt.text, prompt.source) == (category.name, CATEGORIES_SOURCE)
    for agency in agencies.load_agencies().items:
        prompt = catalog[agency.prompt_id]
        assert (prompt.text, prompt.source) == (agency.name, AGENCIES_SOURCE)
    assert catalog["category.menu"].source.endswith("catalog.toml")  # the spoken menu stays
    assert catalog["agency.tazirat"].text == "اداره کل تعزیرات حکومتی استان قم"


def test_a_changed_file_changes_keys_prompts_sla_and_the_service(
    categories_file: Path, tmp_path: Path
) -> None:
    text = categories_file.read_text(encoding="utf-8") + EXTRA
    categories_file.write_text(text.replace('name = "معدن"', 'name = "معدن و صنایع معدنی"'))
    categories._load.cache_clear()

    choices = menus.menus_for("qom")["category"].choices  # type: ignore[union-attr]
    assert choices["7"].target == "place" and choices["7"].sets == (("category", "energy"),)
    catalog = load_catalog(REPO_PROMPTS)
    assert catalog["category.energy"].text == "انرژی و سوخت"
    assert catalog["category.mining"].text == "معدن و صنایع معدنی"
    assert load_policies()["energy"] == SlaPolicy(3, 20, 0.75)

    from ivr.settings import Settings
    from ivr.tickets.db import make_engine, upgrade
    from ivr.tickets.service import TicketDraft, TicketService

    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    upgrade(url)
    service = TicketService(make_engine(url), Settings(storage_dir=tmp_path, database_url=url))
    draft = TicketDraft("web", "qom", "energy", None, None, None, "09121234567", None)
    made = service.create(draft)
    assert made.tracking is not None and service.get(made.tracking).category == "energy"  # type: ignore[union-attr]
    with pytest.raises(categories.UnknownCategory, match="unknown category 'weather'"):
        service.create(TicketDraft("web", "qom", "weather", None, None, None, "0912", None))


GOOD = """\
fallback = "other"
[sla]
first_response_days = 2
resolution_days = 10
[[category]]
code = "trade"
key = "1"
name = "تجارت"
[[category]]
code = "other"
key = "2"
name = "سایر"
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('key = "2"', 'key = "1"'), "key 1 is already 'trade'"),
        (('key = "2"', 'key = "9"'), "key must be one digit from 1 to 8"),
        (('code = "other"', 'code = "trade"'), "'trade': the code is defined twice"),
        (('code = "other"', 'code = "Other Things"'), "must be lower-case letters"),
        (('name = "سایر"', 'name = " "'), "'name' must be a non-empty string"),
        (("resolution_days = 10", "resolution_day = 10"), "unknown field 'resolution_day'"),
        (("resolution_days = 10", "resolution_days = 0"), "resolution_days must be a whole"),
        (('fallback = "other"', 'fallback = "misc"'), "fallback 'misc' is not one of"),
        (('name = "تجارت"', 'name = "تجارت"\nasks_place = "yes"'), "asks_place must be true"),
        (("[sla]", "[sla"), "not valid TOML"),
    ],
)
def test_a_bad_categories_file_is_one_clear_error(change: tuple[str, str], message: str) -> None:
    bad = GOOD.replace(*change)
    assert bad != GOOD
    with pytest.raises(DataFileError) as error:
        categories.categories_from_text(bad, "categories.toml")
    assert message in str(error.value)
    assert str(error.value).startswith("categories.toml")
    assert "\n" not in str(error.value)


def test_a_missing_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"nowhere\.toml: cannot be read"):
        categories.load_categories(tmp_path / "nowhere.toml")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('code = "x"\nname = "ایکس"\nemail = "not-an-address"', "is not an e-mail address"),
        ('code = "x"\nname = "ایکس"', "the field 'email' is missing"),
        ('code = "tazirat"\nname = "دوباره"\nemail = "a@b.example"', "defined twice"),
        ('code = "x"\nname = "ایکس"\nemail = "a@b.example"\nphone = "1"', "unknown field"),
    ],
)
def test_a_bad_agencies_file_is_one_clear_error(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "agencies.toml"
    text = agencies.DEFAULT_FILE.read_text(encoding="utf-8")
    path.write_text(f"{text}\n[[agency]]\n{entry}\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=message):
        agencies.load_agencies(path)


def test_the_installed_agencies() -> None:
    found = agencies.load_agencies()
    codes = [a.code for a in found.items]
    assert len(codes) == len(set(codes)) >= 8
    assert {"provincial_office", "industrial_towns", "tazirat", "standards"} <= set(codes)
    assert all(a.email.endswith(".example") for a in found.items)  # placeholders, never mailed
    with pytest.raises(agencies.UnknownAgency, match="unknown agency 'nowhere'"):
        found.require("nowhere")


def test_every_menu_node_has_a_persian_name_and_no_name_is_left_over() -> None:
    """What agents and supervisors read for a call's path: a node added without a name would
    show its id, a node removed would leave a name nobody sees."""
    nodes = {CallState().node}
    for province in sorted(provinces_dir().glob("*.toml")):
        nodes |= set(menus.menus_for(province.stem))
    assert set(node_names()) == nodes
    assert all("\u0600" <= name[0] <= "\u06ff" for name in node_names().values())
    assert node_name("greeting") == "greeting"  # a stored path's node no longer in the menus
