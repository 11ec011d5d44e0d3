"""The report as a PDF (WeasyPrint), Vazirmatn embedded.

WeasyPrint shapes Persian and lays out RTL itself; the font is declared with ``@font-face`` from
the vendored TTF (``fonts/``), because a family name it cannot find falls back to DejaVu without
a word (the tests read the PDF's fonts with ``pdffonts``).
"""

from __future__ import annotations

import logging

from ivr.reports.typeface import FONT_FILES

FONT_CSS = "\n".join(
    f"@font-face {{ font-family: Vazirmatn; font-weight: {weight}; "
    f"src: url('{path.as_uri()}') format('truetype'); }}"
    for weight, path in zip((400, 700), FONT_FILES, strict=True)
)
"""The ``@font-face`` rules the PDF's HTML carries (file URLs: only WeasyPrint reads them)."""


def html_to_pdf(html: str) -> bytes:
    """PDF bytes of a report rendered with ``font_css=FONT_CSS``."""
    from weasyprint import HTML  # imported late: it loads pango, which only this needs

    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)  # its font-subsetting chatter
    return HTML(string=html, base_url=str(FONT_FILES[0].parent)).write_pdf()  # type: ignore[no-any-return]
