"""``/desk/reports/<date>``: the day's report for the user's scope, with the menu tree drawn from
that day's reach and drop-off.

A provincial supervisor sees their own province only (another province: 404, as tickets); national
supervisors and administrators see the national report, or any province's with ``?province=``.
Agents have no reports (403). The figures are computed live, as ``ivr report`` and the nightly mail
compute them (``ivr.reports``), so the page and the mail agree.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ivr.calendar.offices import UnknownProvince, check_province
from ivr.calendar.store import parse_day
from ivr.clock import tehran_today
from ivr.graphviz import GraphvizError
from ivr.provinces import all_provinces
from ivr.reports.figures import compute
from ivr.reports.menu_tree import menu_tree_svg
from ivr.reports.render import jalali_date, render_report, scope_name
from ivr.reports.store import jalali_folder
from ivr.web.desk import desk_router
from ivr.web.desk.deps import Context, CurrentUser, DeskUser
from ivr.web.desk.render import page

router = desk_router()
NOT_A_DAY = "این تاریخ درست نیست؛ مثلاً ۱۴۰۵/۰۲/۱۰ یا 2026-04-30."


def _province_for(user: DeskUser, asked: str | None) -> str | None:
    """The report's scope for this user; 403 for agents, 404 for a province out of scope."""
    if not user.supervises:
        raise HTTPException(status_code=403, detail="گزارش‌ها فقط برای ناظران است.")
    try:
        province = check_province(asked) if asked else None
    except UnknownProvince:
        raise HTTPException(status_code=404, detail="چنین استانی نیست.") from None
    if user.scope.provinces is None:
        return province  # national or any province
    own = next(iter(sorted(user.scope.provinces)), None)
    if own is None or (province is not None and province != own):
        raise HTTPException(status_code=404, detail="این گزارش در محدوده شما نیست.")
    return own


@router.get("/reports")
def latest_report(request: Request, user: CurrentUser) -> RedirectResponse:
    """Yesterday's report (Tehran): the last whole day."""
    _province_for(user, None)
    day = tehran_today() - timedelta(days=1)
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/desk/reports/{jalali_folder(day)}", status_code=303)


@router.get("/reports/{day}", response_class=HTMLResponse)
def day_report(
    request: Request,
    day: str,
    user: CurrentUser,
    ctx: Context,
    province: str | None = Query(default=None),
) -> HTMLResponse:
    scope = _province_for(user, province)
    try:
        when = parse_day(day)
    except ValueError:
        raise HTTPException(status_code=404, detail=NOT_A_DAY) from None
    settings = ctx.settings
    figures = compute(
        ctx.services.tickets.engine,
        when,
        scope,
        service_level_s=settings.report_service_level_seconds,
    )
    with_menus = {p.code for p in all_provinces()}
    menus_of = scope if scope in with_menus else settings.province  # the menus differ by place only
    try:
        tree = menu_tree_svg(figures, menus_of)
    except GraphvizError:
        tree = None  # the page still shows every figure
    body = render_report(figures, menu_svg=tree, template="desk.html")
    return page(
        request,
        "report.html",
        user=user,
        nav="reports",
        report_body=body,
        title=f"{scope_name(scope)} {jalali_date(figures)}",
        previous=jalali_folder(when - timedelta(days=1)),
        following=jalali_folder(when + timedelta(days=1)),
        province=scope,
    )
