"""The nightly call reports: one Jalali day's figures in SQL, as HTML, PDF, CSV and a mail.

* :mod:`ivr.reports.figures` — every figure, aggregated by the database (SQLAlchemy Core);
* :mod:`ivr.reports.definitions` — what each figure means, from ``definitions.toml``;
* :mod:`ivr.reports.calls_csv` — one row per call, streamed;
* :mod:`ivr.reports.charts` — calls per hour, queue waits, the menu drop-off (matplotlib, SVG);
* :mod:`ivr.reports.render` — the RTL Persian HTML (Jinja2);
* :mod:`ivr.reports.pdf` — the same HTML as a PDF with the font embedded (WeasyPrint);
* :mod:`ivr.reports.typeface` — where the vendored Vazirmatn files are, for both;
* :mod:`ivr.reports.store` — ``storage/reports/<jalali date>/<scope>/``;
* :mod:`ivr.reports.delivery` — the mails through the outbox, once per day and scope.
"""
