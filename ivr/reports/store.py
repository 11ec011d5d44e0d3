"""Where a day's reports are kept: ``<storage>/reports/<jalali date>/<province|national>/``.

Each folder holds ``report.html``, ``report.pdf`` and ``calls.csv``. Files are written beside
their final name and renamed into place, so a reader (the mail, the desk) never sees half a file;
rendering the same day again replaces them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import jdatetime
from sqlalchemy import Engine

from ivr.reports.calls_csv import write_calls_csv
from ivr.reports.figures import Figures, compute
from ivr.reports.pdf import FONT_CSS, html_to_pdf
from ivr.reports.render import render_report

NATIONAL = "national"


@dataclass(frozen=True)
class StoredReport:
    figures: Figures
    folder: Path
    html: Path
    pdf: Path
    csv: Path
    calls: int
    """Rows in the CSV."""


def jalali_folder(day: date) -> str:
    """``1405-09-06``: the Jalali date with ASCII digits, for a path."""
    return jdatetime.date.fromgregorian(date=day).strftime("%Y-%m-%d")


def report_folder(reports_dir: Path, day: date, province: str | None) -> Path:
    return reports_dir / jalali_folder(day) / (province or NATIONAL)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_report(
    engine: Engine,
    reports_dir: Path,
    day: date,
    province: str | None,
    *,
    service_level_s: float = 20.0,
) -> StoredReport:
    """Compute the figures, render HTML, PDF and CSV, and keep them in the day's folder."""
    figures = compute(engine, day, province, service_level_s=service_level_s)
    folder = report_folder(reports_dir, day, province)
    folder.mkdir(parents=True, exist_ok=True)
    html = render_report(figures)
    _replace(folder / "report.html", html.encode("utf-8"))
    _replace(folder / "report.pdf", html_to_pdf(render_report(figures, font_css=FONT_CSS)))
    tmp_csv = folder / ".calls.csv.tmp"
    rows = write_calls_csv(engine, day, province, tmp_csv)
    os.replace(tmp_csv, folder / "calls.csv")
    return StoredReport(
        figures, folder, folder / "report.html", folder / "report.pdf", folder / "calls.csv", rows
    )
