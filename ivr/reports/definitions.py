"""The report's words: titles, headings and each figure's label and definition, from a data file.

Kept in ``definitions.toml`` beside this module, so the Persian lives in data and a supervisor's
question "how is this counted?" is answered by the report itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ivr.datafile import DataFileError, read_toml

DEFINITIONS_FILE = Path(__file__).with_name("definitions.toml")


@dataclass(frozen=True)
class Definition:
    id: str
    label: str
    definition: str


@dataclass(frozen=True)
class ReportWords:
    text: dict[str, str]
    figures: dict[str, Definition]

    def label(self, figure: str) -> str:
        return self.figures[figure].label


@cache
def report_words(path: Path = DEFINITIONS_FILE) -> ReportWords:
    """The file's texts and definitions; a missing label or definition names the entry."""
    data = read_toml(path)
    text = data.get("text", {})
    figures: dict[str, Definition] = {}
    for figure, entry in data.get("figure", {}).items():
        label, meaning = entry.get("label"), entry.get("definition")
        if not isinstance(label, str) or not isinstance(meaning, str):
            raise DataFileError(f"{path}: figure.{figure} needs a label and a definition")
        figures[figure] = Definition(figure, label, meaning)
    return ReportWords(dict(text), figures)
