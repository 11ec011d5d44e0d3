"""``/desk/reports/<date>`` over real HTTP (uvicorn) on the fixture day: the same figures as the
files, the menu tree as an SVG with the day's reach and drop-off, and the scope rule (a provincial
supervisor sees only their province, national sees any, agents none); screenshots in headless
Chromium kept in ``storage/test-output/reports``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import report_day
from desk_helpers import PASSWORD, DeskSite, desk_settings, desk_site
from needs import need

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = PROJECT_ROOT / "storage" / "test-output" / "reports"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskSite]:
    with desk_site(desk_settings(tmp_path_factory.mktemp("desk") / "storage")) as s:
        report_day.load(s.services.tickets.engine)
        s.users.add("qom-sup", "supervisor", password=PASSWORD, province="qom")
        s.users.add("tehran-sup", "supervisor", password=PASSWORD, province="tehran")
        s.users.add("qom-agent", "agent", password=PASSWORD, province="qom")
        s.users.add("boss", "national", password=PASSWORD)
        yield s


def test_a_provincial_supervisor_sees_the_province_and_its_menu_tree(site: DeskSite) -> None:
    client = site.login("qom-sup")
    page = client.get("/desk/reports/1405-09-06")
    assert page.status_code == 200
    html = page.text
    assert 'dir="rtl"' in html and "استان قم" in html
    assert "<th>تماس‌های دریافتی</th><td>۷</td>" in html  # qom's 7 calls, as in the files
    assert html.count("<svg") >= 4  # three charts and the menu tree
    assert "رسیده ۷ · قطع‌شده ۱ (۱۴%)" in html  # main: reached 7, dropped 1
    # Persian digits and the ISO form are the same day.
    same = client.get("/desk/reports/2026-11-27")
    assert "<th>تماس‌های دریافتی</th><td>۷</td>" in same.text
    # Asking for another province (or the nation) does not widen the scope.
    assert client.get("/desk/reports/1405-09-06?province=tehran").status_code == 404
    assert client.get("/desk/reports/1405-09-06?province=qom").status_code == 200


def test_national_sees_the_nation_or_any_province(site: DeskSite) -> None:
    client = site.login("boss")
    national = client.get("/desk/reports/1405-09-06")
    assert national.status_code == 200
    assert "کل کشور" in national.text and "<td>۸</td>" in national.text
    tehran = client.get("/desk/reports/1405-09-06?province=tehran")
    assert tehran.status_code == 200 and "<th>تماس‌های دریافتی</th><td>۱</td>" in tehran.text


def test_agents_and_strangers_get_no_report(site: DeskSite) -> None:
    assert site.login("qom-agent").get("/desk/reports/1405-09-06").status_code == 403
    anonymous = site.client().get("/desk/reports/1405-09-06")
    assert anonymous.status_code == 303 and "/desk/login" in anonymous.headers["location"]
    assert site.login("boss").get("/desk/reports/1405-13-40").status_code == 404
    for far in ("9999-12-31", "0001-01-01"):  # days at the end of what a date holds: were 500
        assert site.login("boss").get(f"/desk/reports/{far}").status_code == 404
    latest = site.login("boss").get("/desk/reports")
    assert latest.status_code == 303 and latest.headers["location"].startswith("/desk/reports/14")


def test_the_page_in_chromium(site: DeskSite) -> None:
    need("/usr/bin/chromium", "chromium")
    from playwright import sync_api as playwright

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            tab = browser.new_page(viewport={"width": 1100, "height": 900})
            tab.goto(f"{site.base_url}/desk/login")
            tab.fill("input[name=username]", "qom-sup")
            tab.fill("input[name=password]", PASSWORD)
            tab.click("button[type=submit]")
            tab.goto(f"{site.base_url}/desk/reports/1405-09-06")
            assert tab.locator("html").get_attribute("dir") == "rtl"
            family = tab.evaluate("getComputedStyle(document.querySelector('.report')).fontFamily")
            assert family.startswith("Vazirmatn")
            assert tab.locator(".report svg").count() >= 4
            OUTPUT.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(OUTPUT / "desk-report-qom.png"), full_page=True)
        finally:
            browser.close()
