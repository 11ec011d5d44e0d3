"""The report's three charts as SVG: calls per hour, the queue's wait distribution, the menu
drop-off funnel.

matplotlib (≥ 3.11 shapes Persian itself: the text is passed as it is, never pre-reshaped) with
the Agg backend, and Vazirmatn registered from the vendored TTF so no label falls back to DejaVu.
Text is drawn as paths (``svg.fonttype = path``), so the SVG looks the same in a mail client,
a browser and WeasyPrint's PDF without the font installed.
"""

from __future__ import annotations

import io
from functools import cache

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ivr.clock import fa_digits
from ivr.flow.node_names import node_name
from ivr.reports.definitions import report_words
from ivr.reports.figures import WAIT_BUCKETS, Figures
from ivr.reports.typeface import FONT_FILES

FUNNEL_NODES = 12
"""The funnel shows the nodes most calls reached."""
COLOUR = "#2f6f8f"


@cache
def font_family() -> str:
    """Register the vendored Vazirmatn with matplotlib once; its family name."""
    for path in FONT_FILES:
        font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(FONT_FILES[0])).get_name()


def _figure(width: float = 7.0, height: float = 3.0) -> Figure:
    family = font_family()
    plt.rcParams.update(
        {"font.family": family, "svg.fonttype": "path", "axes.unicode_minus": False}
    )
    figure = Figure(figsize=(width, height), dpi=100)
    return figure


def _persian_ticks(value: float, _position: int) -> str:
    return fa_digits(f"{value:g}")


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.tight_layout()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # no XML prolog: the SVG goes inside the HTML


def calls_per_hour(figures: Figures) -> str:
    words = report_words().text
    figure = _figure()
    axes = figure.subplots()
    axes.bar(range(24), figures.by_hour, color=COLOUR)
    axes.set_title(words["chart_hours"])
    axes.set_xlabel(words["hour"])
    axes.set_ylabel(words["count"])
    axes.set_xticks(range(0, 24, 2))
    axes.xaxis.set_major_formatter(FuncFormatter(_persian_ticks))
    axes.yaxis.set_major_formatter(FuncFormatter(_persian_ticks))
    return _svg(figure)


def wait_distribution(figures: Figures) -> str:
    words = report_words().text
    figure = _figure()
    axes = figure.subplots()
    labels = [
        fa_digits(f"{low:g}+") if high is None else fa_digits(f"{low:g}–{high:g}")
        for low, high in WAIT_BUCKETS
    ]
    axes.bar(labels, figures.wait_buckets, color=COLOUR)
    axes.set_title(words["chart_waits"])
    axes.set_xlabel(words["wait"])
    axes.set_ylabel(words["count"])
    axes.yaxis.set_major_formatter(FuncFormatter(_persian_ticks))
    return _svg(figure)


def drop_off_funnel(figures: Figures) -> str:
    words = report_words().text
    nodes = figures.nodes[:FUNNEL_NODES]
    figure = _figure(height=max(2.0, 0.35 * len(nodes) + 1.0))
    axes = figure.subplots()
    names = [node_name(n.node) for n in reversed(nodes)]
    axes.barh(names, [n.reached for n in reversed(nodes)], color="#b8d4e3", label=words["reached"])
    axes.barh(names, [n.dropped for n in reversed(nodes)], color="#c0392b", label=words["dropped"])
    axes.set_title(words["chart_funnel"])
    axes.xaxis.set_major_formatter(FuncFormatter(_persian_ticks))
    if nodes:
        axes.legend(loc="lower right")
    return _svg(figure)
