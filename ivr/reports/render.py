"""The report as RTL Persian HTML (Jinja2): the whole report for the PDF, the file and the desk,
and its key figures for the mail's body.

Numbers are shown with Persian digits inside LTR-isolated spans (``.n``), dates in Jalali, Tehran
time; every word comes from ``definitions.toml``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jdatetime
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ivr.agencies import agency_name
from ivr.categories import load_categories
from ivr.clock import fa_digits, jalali, utcnow
from ivr.flow.node_names import node_name
from ivr.reports.definitions import report_words
from ivr.reports.figures import Figures

TEMPLATES = Path(__file__).with_name("templates")
KEY_FIGURES = (
    "received",
    "containment",
    "offered",
    "abandon_rate",
    "service_level",
    "callbacks_reached",
    "tickets_new",
    "overdue",
    "sla_compliance",
)
"""What the mail's body shows; the rest is in the attached PDF."""


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def number(value: float | int | str | None) -> str:
    if value is None:
        return report_words().text["none"]
    if isinstance(value, str):
        return fa_digits(value)
    if isinstance(value, float) and not value.is_integer():
        return fa_digits(f"{value:,.1f}").replace(",", "٬").replace(".", "٫")
    return fa_digits(f"{int(value):,}").replace(",", "٬")


def percent(value: float | None) -> str:
    if value is None:
        return report_words().text["none"]
    return fa_digits(f"{value * 100:.1f}").replace(".", "٫") + "٪"


def seconds(value: float | None) -> str:
    if value is None:
        return report_words().text["none"]
    return f"{number(round(value, 1))} {report_words().text['seconds']}"


def hour(value: int | None) -> str:
    return report_words().text["none"] if value is None else fa_digits(f"{value:02d}:۰۰")


def jalali_date(figures: Figures) -> str:
    return fa_digits(jdatetime.date.fromgregorian(date=figures.day).strftime("%Y/%m/%d"))


def scope_name(province: str | None) -> str:
    words = report_words().text
    if province is None:
        return words["national"]
    from ivr.provinces import load_province

    try:
        name = load_province(province).name
    except Exception:  # a province without a data file: its code
        name = province
    return f"{words['province']} {name}"


def place_names(province: str | None) -> dict[str, str]:
    """Each place's Persian name by id: the province's, or (the national report) every
    province's. A code no file lists any more shows as itself."""
    from ivr.provinces import ProvinceError, load_province, provinces_dir

    codes = [province] if province else sorted(p.stem for p in provinces_dir().glob("*.toml"))
    names: dict[str, str] = {}
    for code in codes:
        try:
            found = load_province(code)
        except ProvinceError:
            continue
        names |= {place.id: place.name for place in (*found.towns, *found.zones)}
    return names


def _value(figures: Figures, figure: str) -> str:
    value = getattr(figures, figure)
    if figure in ("containment", "abandon_rate", "service_level", "sla_compliance"):
        return percent(value)
    return number(value)


def render_report(
    figures: Figures,
    *,
    full: bool = True,
    font_css: str = "",
    menu_svg: str | None = None,
    made_at: datetime | None = None,
    template: str = "report.html",
) -> str:
    """The report's HTML: ``full`` with charts, tables and definitions; else the key figures.

    ``template`` ``desk.html``: the report alone (its style and body), for a page around it.
    """
    words = report_words()
    chart_svgs: dict[str, str] = {}
    if full:
        # Imported late: matplotlib takes about half a second to load, which a node that
        # serves calls and never draws a report need not pay at start.
        from ivr.reports import charts

        chart_svgs = {
            "hours": charts.calls_per_hour(figures),
            "waits": charts.wait_distribution(figures),
            "funnel": charts.drop_off_funnel(figures),
        }
    categories, places = load_categories().names(), place_names(figures.province)
    helpers: dict[str, Callable[..., str]] = {
        "n": number,
        "pct": percent,
        "secs": seconds,
        "hour": hour,
        "when": lambda moment: fa_digits(jalali(moment)),
        "node_name": node_name,
        "category_name": lambda code: categories.get(code, code),
        "place_name": lambda code: places.get(code, code),
        "agency_name": agency_name,
    }
    context: dict[str, Any] = {
        "t": words.text,
        "f": words.figures,
        "x": figures,
        "full": full,
        "charts": chart_svgs,
        "font_css": font_css,
        "menu_svg": menu_svg,
        "scope_name": scope_name(figures.province),
        "day_jalali": jalali_date(figures),
        "made_at": fa_digits(jalali(made_at or utcnow())),
        "key_figures": [(k, _value(figures, k)) for k in KEY_FIGURES],
        **helpers,
    }
    return _environment().get_template(template).render(context)
