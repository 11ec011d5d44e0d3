"""The desk's ticket pages and actions: ``/desk/tickets`` (filters, search, pages), one ticket's
page, its JSON, its recording and answer audio (both with HTTP ranges), and the form posts that
change it (status, assign, refer, answer).

Every read and write goes through the ticket service or ``DeskQueries`` with the user's
``Scope``: a ticket of another province is not found (404), whichever door is tried. Every
change is a history line naming the user (``actor``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from ivr.agencies import UnknownAgency
from ivr.answers import AnswerAudioError, convert_upload, render_answer
from ivr.calendar.store import parse_day
from ivr.categories import load_categories
from ivr.clock import as_aware, fa_digits, iso_utc, jalali_words, utcnow
from ivr.tickets.desk_queries import DeskQueries, TicketFilter
from ivr.tickets.service import ReferralMail, TicketNotFound, TicketView
from ivr.tickets.statuses import TRANSITIONS, Status, TransitionRefused
from ivr.web.deps import RowIdQuery
from ivr.web.desk import desk_router
from ivr.web.desk.deps import ApiUser, Context, CurrentUser, DeskUser
from ivr.web.desk.render import page
from ivr.web.pages import templates

log = logging.getLogger(__name__)

router = desk_router()
MAX_UPLOAD = 10 * 1024 * 1024


def queries(ctx: Context) -> DeskQueries:
    return DeskQueries(ctx.services.tickets.engine)


def _filter(params: dict[str, str]) -> tuple[TicketFilter, list[str]]:
    """The list's filter from the query string, and what could not be read (shown, ignored)."""
    errors: list[str] = []

    def day(name: str) -> Any:
        text = params.get(name, "").strip()
        if not text:
            return None
        try:
            return parse_day(text)
        except ValueError:
            errors.append(name)
            return None

    level = params.get("level", "").strip()
    return (
        TicketFilter(
            status=params.get("status") or None,
            category=params.get("category") or None,
            place=params.get("place") or None,
            channel=params.get("channel") or None,
            overdue=params.get("overdue") in ("1", "on", "true"),
            escalation_level=int(level) if level in ("0", "1", "2") else None,
            created_from=day("from"),
            created_to=day("to"),
            q=params.get("q") or None,
            assignee=params.get("assignee") or None,
        ),
        errors,
    )


@router.get("/tickets", response_class=HTMLResponse)
def ticket_list(
    request: Request,
    user: CurrentUser,
    ctx: Context,
    before: RowIdQuery = None,
) -> HTMLResponse:
    params = dict(request.query_params)
    found, errors = _filter(params)
    result = queries(ctx).page(user.scope, found, before=before)
    kept = {k: v for k, v in params.items() if k != "before" and v}
    return page(
        request,
        "tickets.html",
        user=user,
        nav="tickets",
        result=result,
        params=kept,
        errors=errors,
        statuses=[s.value for s in Status],
        categories=load_categories().items,
        now=utcnow(),
    )


def _visible(ctx: Context, user: DeskUser, tracking: str) -> TicketView:
    view = ctx.services.tickets.get_in(tracking, user.scope)
    if view is None:
        raise HTTPException(404, "چنین درخواستی در محدوده شما نیست.")
    return view


def _json(view: TicketView) -> dict[str, Any]:
    return {
        "tracking": view.tracking,
        "province": view.province,
        "category": view.category,
        "place": view.place,
        "channel": view.channel,
        "status": view.status,
        "agency": view.agency,
        "assignee": view.assignee,
        "callback_number": view.callback_number,
        "caller_number": view.caller_number,
        "created_at": iso_utc(view.created_at),
        "due_at": iso_utc(view.due_at),
        "answer": view.answer_text,
        "has_recording": bool(view.recording_path),
        "history": [
            {
                "at": iso_utc(h.at),
                "kind": h.kind,
                "old": h.old_value,
                "new": h.new_value,
                "actor": h.actor,
                "note": h.note,
            }
            for h in view.history
        ],
    }


@router.get("/tickets/{tracking}.json")
def ticket_json(tracking: str, user: ApiUser, ctx: Context) -> JSONResponse:
    return JSONResponse(_json(_visible(ctx, user, tracking)))


def _working_left(ctx: Context, view: TicketView, due: datetime | None) -> float | None:
    """Working hours from now to ``due`` (negative: overdue by that much), or None."""
    sla = ctx.services.tickets.sla
    if due is None or sla is None:
        return None
    try:
        calendar = sla.calendars.get()  # type: ignore[attr-defined]
        now = as_aware(utcnow()).replace(tzinfo=None)
        end = as_aware(due).replace(tzinfo=None)
        if end >= now:
            return calendar.working_seconds_between(now, end, view.province) / 3600
        return -calendar.working_seconds_between(end, now, view.province) / 3600
    except Exception:
        log.exception("working hours left for %s", view.tracking)
        return None


@router.get("/tickets/{tracking}", response_class=HTMLResponse)
def ticket_page(
    request: Request, tracking: str, user: CurrentUser, ctx: Context, done: str = ""
) -> HTMLResponse:
    view = _visible(ctx, user, tracking)
    q = queries(ctx)
    numbers = [n for n in (view.caller_number, view.callback_number) if n]
    left = {
        "first_response": None
        if view.responded_at
        else _working_left(ctx, view, view.first_response_due_at),
        "resolution": _working_left(ctx, view, view.due_at),
    }
    return page(
        request,
        "ticket.html",
        user=user,
        nav="tickets",
        t=view,
        calls=q.calls_of(view.tracking),
        others=q.same_number(user.scope, view.tracking, numbers),
        other_calls=q.calls_from([view.caller_number] if view.caller_number else []),
        moves=[s.value for s in TRANSITIONS[Status(view.status)]],
        agencies=ctx.services.tickets.agencies.items,
        left=left,
        done=done,
        error=request.query_params.get("error", ""),
        now=utcnow(),
    )


def _audio(path: str | None, ctx: Context) -> FileResponse:
    """A stored WAV (a caller's recording or an answer), only from the storage folder."""
    if not path:
        raise HTTPException(404)
    file = Path(path)
    if not file.is_absolute():
        file = ctx.settings.recordings_dir / file
    storage = ctx.settings.storage_dir.resolve()
    resolved = file.resolve()
    if not resolved.is_file() or storage not in resolved.parents:
        raise HTTPException(404)
    # Starlette's FileResponse answers Range requests (206) itself; private: no shared caches.
    return FileResponse(resolved, media_type="audio/wav", headers={"Cache-Control": "private"})


@router.get("/tickets/{tracking}/recording")
def recording(tracking: str, user: CurrentUser, ctx: Context) -> FileResponse:
    return _audio(_visible(ctx, user, tracking).recording_path, ctx)


@router.get("/tickets/{tracking}/answer.wav")
def answer_audio(tracking: str, user: CurrentUser, ctx: Context) -> FileResponse:
    return _audio(_visible(ctx, user, tracking).answer_audio_path, ctx)


def _back(request: Request, tracking: str, done: str = "", error: str = "") -> RedirectResponse:
    root = request.scope.get("root_path", "")
    query = f"?done={done}" if done else f"?error={error}" if error else ""
    return RedirectResponse(f"{root}/desk/tickets/{tracking}{query}", status_code=303)


@router.post("/tickets/{tracking}/status")
def change_status(
    request: Request,
    tracking: str,
    user: CurrentUser,
    ctx: Context,
    status: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> RedirectResponse:
    _visible(ctx, user, tracking)
    try:
        ctx.services.tickets.set_status(
            tracking, status, user.actor, note.strip() or None, scope=user.scope
        )
    except TicketNotFound:
        raise HTTPException(404) from None
    except (TransitionRefused, ValueError):
        return _back(request, tracking, error="transition")
    return _back(request, tracking, done="status")


@router.post("/tickets/{tracking}/assign")
def assign(
    request: Request,
    tracking: str,
    user: CurrentUser,
    ctx: Context,
    assignee: Annotated[str, Form()] = "",
) -> RedirectResponse:
    _visible(ctx, user, tracking)
    name = assignee.strip().lower() or None
    if not user.scope.can_assign and name not in (None, user.name):
        raise HTTPException(403, "کارشناس درخواست را خودش برمی‌دارد؛ واگذاری با ناظر است.")
    if name is not None:
        target = _user_named(ctx, name)
        if target is None or (target.province and not user.scope.allows(target.province)):
            return _back(request, tracking, error="assignee")
    try:
        ctx.services.tickets.assign(tracking, name, user.actor, scope=user.scope)
    except TicketNotFound:
        raise HTTPException(404) from None
    return _back(request, tracking, done="assigned")


def _user_named(ctx: Context, name: str) -> Any:
    from ivr.users.store import UserStore

    found = UserStore(ctx.services.tickets.engine).get(name)
    return found if found is not None and found.active else None


def referral_mail(ctx: Context, view: TicketView, agency_name: str, user: DeskUser) -> ReferralMail:
    values = {
        "t": view,
        "tracking": fa_digits(view.tracking),
        "agency": agency_name,
        "created": jalali_words(view.created_at),
        "due": jalali_words(view.due_at),
        "user": user.name,
    }
    subject = templates.get_template("mail/referral_subject.txt").render(values).strip()
    body = templates.get_template("mail/referral.txt").render(values)
    markup = templates.get_template("mail/referral.html").render(values)
    return ReferralMail(ctx.settings.mail_from, subject, body, markup)


@router.post("/tickets/{tracking}/refer")
def refer(
    request: Request,
    tracking: str,
    user: CurrentUser,
    ctx: Context,
    agency: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> RedirectResponse:
    view = _visible(ctx, user, tracking)
    found = ctx.services.tickets.agencies.get(agency)
    if found is None:
        return _back(request, tracking, error="agency")
    try:
        ctx.services.tickets.refer(
            tracking,
            found.code,
            user.actor,
            note.strip() or None,
            scope=user.scope,
            mail=referral_mail(ctx, view, found.name, user),
        )
    except TicketNotFound:
        raise HTTPException(404) from None
    except (TransitionRefused, UnknownAgency):
        return _back(request, tracking, error="transition")
    return _back(request, tracking, done="referred")


@router.post("/tickets/{tracking}/answer")
async def answer(
    request: Request,
    tracking: str,
    user: CurrentUser,
    ctx: Context,
    text: Annotated[str, Form()] = "",
    audio: Annotated[UploadFile | None, File()] = None,
) -> RedirectResponse:
    """Save the answer; its audio is rendered now (or the uploaded WAV converted), so the
    caller who follows up hears it without waiting for a voice."""
    from starlette.concurrency import run_in_threadpool

    view = await run_in_threadpool(_visible, ctx, user, tracking)
    if not text.strip():
        return _back(request, tracking, error="answer")
    data = b""
    if audio is not None and audio.filename:
        data = await audio.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return _back(request, tracking, error="upload")
    try:
        if data:
            path = await run_in_threadpool(convert_upload, data, view.tracking, ctx.settings)
        else:
            path = await run_in_threadpool(render_answer, text, view.tracking, ctx.settings)
    except AnswerAudioError as error:
        log.error("ticket %s: %s", view.tracking, error)
        return _back(request, tracking, error="audio")
    try:
        await run_in_threadpool(
            lambda: ctx.services.tickets.answer(
                tracking, text, user.actor, audio_path=str(path), scope=user.scope
            )
        )
    except TicketNotFound:
        raise HTTPException(404) from None
    except (TransitionRefused, ValueError):
        path.unlink(missing_ok=True)
        return _back(request, tracking, error="answer")
    return _back(request, tracking, done="answered")
