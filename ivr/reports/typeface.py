"""Where the vendored Vazirmatn files are, for the charts (matplotlib) and the PDF (WeasyPrint),
in a module that imports neither: a server that never draws a report does not load them."""

from __future__ import annotations

from pathlib import Path

FONT_DIR = Path(__file__).with_name("fonts")
FONT_FILES = (FONT_DIR / "Vazirmatn-Regular.ttf", FONT_DIR / "Vazirmatn-Bold.ttf")
"""Regular (400) and bold (700)."""
