"""The report's files for the fixture day: RTL Persian HTML, a PDF with Vazirmatn embedded (read
with poppler's ``pdffonts``, pages rendered with ``pdftoppm`` into ``storage/test-output/reports``),
and a CSV with one row per call of that Tehran day."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import report_day
from needs import need
from report_day import DAY

from ivr import categories
from ivr.agencies import agency_name
from ivr.flow.node_names import node_name
from ivr.provinces import load_province
from ivr.reports import charts
from ivr.reports.definitions import report_words
from ivr.reports.store import StoredReport, jalali_folder, write_report
from ivr.tickets.db import make_engine, upgrade

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = PROJECT_ROOT / "storage" / "test-output" / "reports"
PERSIAN_DIGITS = re.compile("[۰-۹]")


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, StoredReport]:
    folder = tmp_path_factory.mktemp("reports")
    url = f"sqlite:///{folder / 'ivr.db'}"
    upgrade(url)
    engine = make_engine(url)
    report_day.load(engine)
    made = {p: write_report(engine, folder / "reports", DAY, p) for p in ("qom", None)}
    engine.dispose()
    return made


def test_files_are_kept_under_the_jalali_date_and_scope(
    stored: dict[str | None, StoredReport],
) -> None:
    assert jalali_folder(DAY) == "1405-09-06"
    qom, national = stored["qom"], stored[None]
    assert qom.folder.parts[-2:] == ("1405-09-06", "qom")
    assert national.folder.parts[-2:] == ("1405-09-06", "national")
    for report in (qom, national):
        assert {p.name for p in report.folder.iterdir()} == {
            "report.html",
            "report.pdf",
            "calls.csv",
        }


def test_html_is_rtl_persian_with_definitions_and_charts(
    stored: dict[str | None, StoredReport],
) -> None:
    html = stored["qom"].html.read_text(encoding="utf-8")
    assert '<html lang="fa" dir="rtl">' in html
    assert "۱۴۰۵/۰۹/۰۶" in html  # the Jalali day, Persian digits
    words = report_words()
    assert words.text["title"] in html
    for definition in words.figures.values():  # every figure's meaning is stated
        assert definition.definition in html
    assert html.count("<svg") >= 3  # hours, waits, funnel
    assert "<th>تماس‌های دریافتی</th><td>۷</td>" in html
    assert "۵۰٫۰٪" in html  # abandon rate, service level
    # The drop-off table names each menu in Persian, its id beside it for the menu drawing.
    assert f'<td>{node_name("main")} <span class="n id">main</span></td>' in html
    # Categories, places and agencies by their names in the data files, never their codes.
    names = {**categories.load_categories().names(), "tazirat": agency_name("tazirat")}
    names["shokouhieh"] = load_province("qom").place("shokouhieh").name  # type: ignore[union-attr]
    for code in names:
        assert f"<td>{code}</td>" not in html
    for code in ("trade", "consumer", "shokouhieh", "tazirat"):
        assert f"<td>{names[code]}</td>" in html
    assert "Traceback" not in html


def test_charts_use_the_registered_persian_font() -> None:
    assert charts.font_family() == "Vazirmatn"
    from matplotlib import font_manager

    found = font_manager.findfont(font_manager.FontProperties(family="Vazirmatn"))
    assert Path(found).name == "Vazirmatn-Regular.ttf"  # not a DejaVu fallback


def test_a_serving_node_loads_the_chart_library_only_to_draw_a_report() -> None:
    """matplotlib takes about half a second to import: not at every server start."""
    loaded = "import sys; print('matplotlib' in sys.modules)"
    program = f"import ivr.server, ivr.web.app, ivr.scheduler; {loaded}; "
    program += f"from ivr.reports.render import render_report; {loaded}"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_pdf_embeds_vazirmatn_and_renders_to_png(stored: dict[str | None, StoredReport]) -> None:
    need("pdffonts", "poppler-utils")
    pdf = stored["qom"].pdf
    assert pdf.read_bytes().startswith(b"%PDF")
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True)
    lines = fonts.stdout.splitlines()[2:]
    assert lines, fonts.stdout
    assert all("Vazirmatn" in line for line in lines), fonts.stdout
    assert all(line.split()[-5] == "yes" for line in lines), fonts.stdout  # emb column
    assert "DejaVu" not in fonts.stdout
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    assert "گزارش" in text.stdout and "۱۴۰۵" in text.stdout
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for old in OUTPUT.glob("qom-*.png"):
        old.unlink()
    subprocess.run(
        ["pdftoppm", "-r", "80", "-png", str(pdf), str(OUTPUT / "qom")], check=True, timeout=120
    )
    pages = sorted(OUTPUT.glob("qom-*.png"))
    print(f"report pages kept in {OUTPUT}")
    assert pages and all(p.stat().st_size > 5000 for p in pages)


def test_csv_has_one_row_per_call_of_the_day(stored: dict[str | None, StoredReport]) -> None:
    with stored["qom"].csv.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert stored["qom"].calls == len(rows) == 7
    assert rows[0]["external_id"] == "call-7"  # 00:01 Tehran, the first
    assert rows[-1]["external_id"] == "call-5"  # 23:59 Tehran, the last
    assert rows[-1]["started_tehran"] == "1405/09/06 23:59"
    first = next(r for r in rows if r["external_id"] == "call-1")
    assert (first["steps"], first["last_node"], first["outcome"]) == ("5", "new.record", "ticket")
    national = list(csv.reader(stored[None].csv.open(encoding="utf-8-sig")))
    assert len(national) == 1 + 8
    assert not any(PERSIAN_DIGITS.search(cell) for row in national for cell in row)


def test_every_figure_the_report_shows_has_a_definition() -> None:
    from ivr.reports.render import KEY_FIGURES, TEMPLATES

    shown = set(re.findall(r"\bf\.(\w+)\.label", (TEMPLATES / "_body.html").read_text()))
    shown |= set(KEY_FIGURES)
    defined = set(report_words().figures)
    assert shown <= defined, shown - defined
    assert len(shown) >= 20
