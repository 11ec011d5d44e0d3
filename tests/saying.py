"""A small reader of Asterisk's say.conf "new" mode rules, to check dialplans/say.conf in Python.

It does what app_playback.c's do_say does with a number: match "num:<n>" against a language's
patterns in file order (dialplan patterns: X N Z, [sets], "." and "!"), substitute ${SAY} and
${SAY:a:b}, re-process components with a ":" and collect the others as sound names. Only what
the number rules use is supported; anything else fails loudly.
"""

from __future__ import annotations

import re
from pathlib import Path


def read_sections(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Section → its (pattern, body) rules in file order (comments and blank lines dropped)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            current = sections.setdefault(line[1 : line.index("]")], [])
            continue
        if current is None or "=>" not in line:
            continue
        pattern, body = line.split("=>", 1)
        current.append((pattern.strip(), body.strip()))
    return sections


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern) + r"\Z", re.IGNORECASE)
    out, i, p = "", 0, pattern[1:]
    while i < len(p):
        c = p[i]
        if c == "[":
            j = p.index("]", i)
            out += "[" + p[i + 1 : j] + "]"
            i = j + 1
            continue
        out += {
            "x": "[0-9]",
            "z": "[1-9]",
            "n": "[2-9]",
            ".": ".+",
            "!": ".*",
        }.get(c.lower(), re.escape(c))
        i += 1
    return re.compile(out + r"\Z", re.IGNORECASE)


def _substitute(component: str, say: str) -> str:
    def one(m: re.Match[str]) -> str:
        parts = m.group(1).split(":")
        if parts[0] != "SAY" or len(parts) > 3:
            raise ValueError(f"unsupported variable in {component!r}")
        start = int(parts[1]) if len(parts) > 1 else 0
        if len(parts) == 3:
            return say[start : start + int(parts[2])]
        return say[start:]

    return re.sub(r"\$\{([^}]*)\}", one, component)


class SayRules:
    def __init__(self, path: Path, language: str) -> None:
        sections = read_sections(path)
        self.rules = [(_pattern_regex(p), body) for p, body in sections[language]]

    def say(self, text: str, depth: int = 0) -> list[str]:
        """The sound names played for ``text`` (e.g. "num:25"); [] when no rule matches."""
        if depth > 10:
            raise RecursionError(f"say.conf recursion too deep at {text!r}")
        body = next((b for rx, b in self.rules if rx.match(text)), None)
        if body is None:
            return []
        value = text.split(":", 1)[1] if ":" in text else text
        sounds: list[str] = []
        for component in (c.strip() for c in body.split(",")):
            filled = _substitute(component, value)
            if ":" in filled:
                sounds += self.say(filled, depth + 1)
            else:
                sounds.append(filled)
        return sounds

    def number(self, n: int) -> list[str]:
        return self.say(f"num:{n}")
