"""Prompt audio over HTTP (Twilio's ``<Play>``) and a page to listen to every prompt.

The ``/prompts`` page is for a studio or a supervisor checking pronunciation by ear: every
prompt with its text, the voice that made it, its length and a player, and a box where a number,
digit string or date is played as the IVR plays it. That sequence is joined on the server into
one WAV (``/prompts/say.wav``) rather than chained in the browser: it is the same code as
``ivr speak --wav``, needs no JavaScript, and plays the fragments back to back with no gaps the
browser would add between files (which is what a caller hears from Asterisk).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from ivr.prompts import (
    PromptError,
    audio_path,
    file_stem,
    join_fragments,
    load_catalog,
    read_manifest,
    read_wav_info,
    studio_path,
)
from ivr.web.deps import Context
from ivr.web.pages import templates

router = APIRouter(tags=["prompts"])
STEM = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_TYPED = 64
"""Longer than any number, digit string or date the IVR speaks: refused before parsing."""


@router.get("/prompts/fa/{stem}.wav")
def prompt_audio(stem: str, ctx: Context) -> FileResponse:
    """A studio recording if there is one, else the generated file."""
    if not STEM.match(stem):
        raise HTTPException(404)
    base, generated = ctx.settings.prompts_dir, ctx.settings.generated_prompts_dir
    for path in (base / "fa" / f"{stem}.wav", generated / "fa" / f"{stem}.wav"):
        if path.is_file():
            return FileResponse(path, media_type="audio/wav")
    raise HTTPException(404)


@dataclass(frozen=True)
class PromptRow:
    """One line of the page."""

    id: str
    text: str
    voice: str  # "studio", the synthetic voice's name, "silence", or "" when not built
    seconds: float | None
    url: str | None


@dataclass(frozen=True)
class Spoken:
    """What the box asked for and what the IVR would play for it."""

    kind: str
    value: str
    fragments: list[str]
    words: str
    url: str


def _rows(prompts_dir: Path, generated: Path) -> list[PromptRow]:
    manifest = read_manifest(prompts_dir, generated)
    rows = []
    for prompt_id, prompt in load_catalog(prompts_dir).items():
        path = audio_path(prompts_dir, prompt_id, generated)
        if path is not None and path == studio_path(prompts_dir, prompt_id):
            voice = "studio"
        else:
            voice = manifest.get(prompt_id, {}).get("voice", "") if path is not None else ""
        rows.append(
            PromptRow(
                id=prompt_id,
                text=prompt.text,
                voice=voice,
                seconds=_seconds(path),
                url=f"/prompts/fa/{file_stem(prompt_id)}.wav" if path is not None else None,
            )
        )
    return rows


def _seconds(path: Path | None) -> float | None:
    if path is None:
        return None
    try:
        return read_wav_info(path).duration
    except Exception:  # a studio file wave cannot read (μ-law, mp3 renamed…): length unknown
        return None


def _fragments(kind: str, value: str) -> list[str]:
    """The fragments for typed input, or ValueError with the sentence to show."""
    from ivr.spoken import Kind, fragments_for

    if kind not in {k.value for k in Kind}:
        raise ValueError(f"unknown kind {kind!r}: number, digits or date")
    if len(value) > MAX_TYPED:
        raise ValueError(f"too long: at most {MAX_TYPED} characters")
    return fragments_for(kind, value)


@router.get("/prompts", response_class=HTMLResponse)
def prompts_page(
    request: Request,
    ctx: Context,
    kind: Annotated[str, Query()] = "number",
    value: Annotated[str, Query()] = "",
) -> HTMLResponse:
    """Every prompt with a player, and the box that plays numbers, digits and dates."""
    from urllib.parse import urlencode

    from ivr.speech import fragment_words, load_fragment_texts

    spoken: Spoken | None = None
    error: str | None = None
    status = 200
    if value.strip():
        prompts_dir = ctx.settings.prompts_dir
        try:
            fragments = _fragments(kind, value)
        except ValueError as exc:
            error, status = str(exc), 400
        else:
            generated = ctx.settings.generated_prompts_dir
            missing = [f for f in fragments if audio_path(prompts_dir, f, generated) is None]
            if missing:
                error = f"no audio for {', '.join(missing)} (run `ivr prompts build`)"
                status = 503
        if error is None:
            spoken = Spoken(
                kind=kind,
                value=value,
                fragments=fragments,
                words=fragment_words(
                    fragments, load_fragment_texts(prompts_dir / "fragments.toml")
                ),
                url="/prompts/say.wav?" + urlencode({"kind": kind, "value": value}),
            )
    return templates.TemplateResponse(
        request,
        "prompts.html",
        {
            "rows": _rows(ctx.settings.prompts_dir, ctx.settings.generated_prompts_dir),
            "kind": kind,
            "value": value,
            "spoken": spoken,
            "error": error,
        },
        status_code=status,
    )


@router.get("/prompts/say.wav")
def spoken_audio(
    ctx: Context, kind: Annotated[str, Query()], value: Annotated[str, Query()]
) -> Response:
    """The fragments for a number, digit string or date joined into one WAV, as the IVR plays
    them in a row."""
    try:
        fragments = _fragments(kind, value)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    try:
        sound = join_fragments(
            ctx.settings.prompts_dir, fragments, ctx.settings.generated_prompts_dir
        )
    except PromptError as exc:
        raise HTTPException(503, str(exc)) from None
    return Response(sound, media_type="audio/wav")
