"""Prompt audio for anyone who plays it over HTTP (Twilio's ``<Play>``, the pages)."""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from ivr.web.deps import Context

router = APIRouter(tags=["prompts"])
STEM = re.compile(r"^[A-Za-z0-9_-]+$")


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
