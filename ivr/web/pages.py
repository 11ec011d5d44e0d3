"""What every HTML page shares: the Jinja2 templates (``templates/base.html`` is the Persian,
right-to-left frame) and the static files (CSS, the Vazirmatn font, scripts) under /static.

The font is served by the app itself, never from a CDN: the pages work on a network without
the internet, and no visitor's address is handed to a third party.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

templates = Jinja2Templates(directory=TEMPLATES_DIR)


def static_files() -> StaticFiles:
    """Mount as ``app.mount("/static", static_files(), name="static")``; templates link to it
    with ``url_for('static', path=...)``."""
    return StaticFiles(directory=STATIC_DIR)
