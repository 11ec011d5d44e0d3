"""Screen pops before any browser: the ``desk_event`` store and its streams on SQLite and
PostgreSQL, AMI AgentConnect turned into a pop for the right user, the pop's payload (this
call's IVR path, the caller's earlier tickets within the viewer's scope) and the pop's two
links (new ticket for this call, attach to ticket N)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pg import db_url, migrated_url  # noqa: F401  (fixtures)
from sqlalchemy import Engine, text

from ivr.call_tickets import CallTicketError, attach_call, new_ticket_for_call
from ivr.desk_events import DeskEvents, desk_events
from ivr.flow.outcomes import EventKind, StepOutcome
from ivr.screen_pop import build_pop
from ivr.settings import Settings
from ivr.telephony.ami import AmiEvent
from ivr.telephony.queue_members import Member, live_view
from ivr.telephony.queue_status import AgentState, QueueAgent, QueueSnapshot, WaitingCaller
from ivr.telephony.screen_pops import AgentConnectPops
from ivr.tickets.calls import CallStore, StepRecord
from ivr.tickets.db import make_engine
from ivr.tickets.service import TicketDraft, TicketService
from ivr.users.store import UserStore

CALLER = "09121234567"


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:  # noqa: F811
    made = make_engine(migrated_url)
    try:
        yield made
    finally:
        made.dispose()


@pytest.fixture
def users(engine: Engine) -> dict[str, int]:
    store = UserStore(engine)
    made = {
        "sara": store.add("sara", "agent", password="long enough", province="qom",
                          extension="PJSIP/201"),
        "reza": store.add("reza", "agent", password="long enough", province="qom",
                          extension="PJSIP/202"),
        "nima": store.add("nima", "agent", password="long enough", province="tehran",
                          extension="PJSIP/301"),
    }  # fmt: skip
    return {name: user.id for name, user in made.items()}  # type: ignore[misc]


def tickets_of(engine: Engine, tmp_path: Path) -> TicketService:
    settings = Settings(storage_dir=tmp_path, database_url="", node_name="node1")
    return TicketService(engine, settings, retry_delay=0.01)


def agent_connect(interface: str, uniqueid: str, caller: str = CALLER) -> AmiEvent:
    return AmiEvent(
        "AgentConnect",
        {"Interface": interface, "Uniqueid": uniqueid, "CallerIDNum": caller, "Queue": "q"},
    )


# --- the store ---------------------------------------------------------------------------------


def test_a_pop_is_stored_once_per_user_and_call(engine: Engine, users: dict[str, int]) -> None:
    hub = DeskEvents(engine)
    start = hub.last_id(users["sara"])
    first = hub.push(users["sara"], "asterisk", "1700000000.1", CALLER)
    assert first is not None and first > start
    assert hub.push(users["sara"], "asterisk", "1700000000.1", CALLER) is None  # a repeat
    other = hub.push(users["reza"], "asterisk", "1700000000.2", CALLER)
    mine = hub.after(users["sara"], start)
    assert [(e.id, e.external_id, e.caller) for e in mine] == [(first, "1700000000.1", CALLER)]
    assert [e.id for e in hub.after(users["reza"], 0)] == [other]
    assert hub.last_id(users["sara"]) == first


def test_old_pops_are_pruned(engine: Engine, users: dict[str, int]) -> None:
    now = [datetime(2026, 12, 1, 8, 0, tzinfo=UTC)]
    hub = DeskEvents(engine, clock=lambda: now[0])
    hub.push(users["sara"], "asterisk", "old")
    now[0] += timedelta(days=2)
    hub.push(users["sara"], "asterisk", "new")
    assert hub.prune(timedelta(days=1)) == 1
    assert [e.external_id for e in hub.after(users["sara"], 0)] == ["new"]


def test_pushing_prunes_now_and_then(
    engine: Engine, users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.desk_events.PRUNE_EVERY", 1)
    now = [datetime(2026, 12, 1, 8, 0, tzinfo=UTC)]
    hub = DeskEvents(engine, clock=lambda: now[0])
    hub.push(users["sara"], "asterisk", "old")
    now[0] += timedelta(days=2)
    hub.push(users["sara"], "asterisk", "new")  # lands on the pruning turn
    assert [e.external_id for e in hub.after(users["sara"], 0)] == ["new"]


def test_a_stream_wakes_at_once_here_and_within_its_poll_from_another_node(
    engine: Engine,
    users: dict[str, int],
    migrated_url: str,  # noqa: F811
) -> None:
    here = DeskEvents(engine, poll_s=5.0)  # long: only the wake-up can be quick
    other_engine = make_engine(migrated_url)
    other_node = DeskEvents(other_engine)
    polling = DeskEvents(engine, poll_s=0.3)

    async def first_of(hub: DeskEvents, push: DeskEvents, call: str) -> tuple[str, float]:
        stream = hub.stream(users["sara"])
        task = asyncio.ensure_future(anext(stream))
        while hub.listening(users["sara"]) == 0 or not await _started(task):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the stream has read once and waits
        started = time.monotonic()
        await asyncio.to_thread(push.push, users["sara"], "asterisk", call)
        event = await asyncio.wait_for(task, 3.0)
        await stream.aclose()
        return event.external_id, time.monotonic() - started

    try:
        call, took = asyncio.run(first_of(here, here, "local-1"))
        assert call == "local-1" and took < 1.0
        call, took = asyncio.run(first_of(polling, other_node, "remote-1"))
        assert call == "remote-1" and took < 1.0
        assert here.listening(users["sara"]) == 0  # closed streams are forgotten
    finally:
        other_engine.dispose()


async def _started(task: asyncio.Future[object]) -> bool:
    await asyncio.sleep(0)
    return not task.done()


def test_a_stream_does_not_replay_what_came_before_it(engine: Engine, users: dict[str, int]):
    hub = DeskEvents(engine, poll_s=0.05)
    hub.push(users["sara"], "asterisk", "before")

    async def run() -> list[str]:
        stream = hub.stream(users["sara"])
        task = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(hub.push, users["sara"], "asterisk", "after")
        got = await asyncio.wait_for(task, 3.0)
        await stream.aclose()
        return [got.external_id]

    assert asyncio.run(run()) == ["after"]


# --- AgentConnect ------------------------------------------------------------------------------


class _NoAmi:
    def add_listener(self, *a: object) -> object:  # pragma: no cover - start() is not used
        raise AssertionError


def test_agent_connect_pops_up_for_the_agent_whose_extension_answered(
    engine: Engine,
    users: dict[str, int],
    migrated_url: str,  # noqa: F811
) -> None:
    pops = AgentConnectPops(UserStore(engine), DeskEvents(engine), _NoAmi())  # type: ignore[arg-type]
    made = pops.handle(agent_connect("PJSIP/202", "1700000001.5"))
    assert made is not None
    hub = DeskEvents(engine)
    assert [e.external_id for e in hub.after(users["reza"], 0)] == ["1700000001.5"]
    assert hub.after(users["sara"], 0) == []
    assert pops.handle(agent_connect("PJSIP/999", "1700000001.6")) is None  # nobody's phone
    assert pops.handle(AmiEvent("AgentConnect", {"Interface": "PJSIP/201"})) is None
    # A second node on the same PBX hears the same event: still one pop.
    other = make_engine(migrated_url)
    try:
        twin = AgentConnectPops(UserStore(other), DeskEvents(other), _NoAmi())  # type: ignore[arg-type]
        assert twin.handle(agent_connect("PJSIP/202", "1700000001.5")) is None
    finally:
        other.dispose()
    assert len(hub.after(users["reza"], 0)) == 1


def test_a_disabled_user_gets_no_pop(engine: Engine, users: dict[str, int]) -> None:
    UserStore(engine).disable("sara")
    pops = AgentConnectPops(UserStore(engine), DeskEvents(engine), _NoAmi())  # type: ignore[arg-type]
    assert pops.handle(agent_connect("PJSIP/201", "1700000002.1")) is None


def test_the_process_shares_one_hub_per_engine(engine: Engine) -> None:
    assert desk_events(engine) is desk_events(engine)


# --- the payload and its links -----------------------------------------------------------------


def _queued_call(engine: Engine, external_id: str, province: str = "qom") -> int:
    calls = CallStore(engine)
    call_id = calls.open("asterisk", external_id, CALLER, "124", province=province)
    calls.save_turn(
        call_id,
        "{}",
        [
            StepRecord("greeting", EventKind.DIGITS, "7", StepOutcome.INVALID),
            StepRecord("greeting", EventKind.DIGITS, "0", StepOutcome.TRANSFER_REQUESTED),
        ],
    )
    return call_id


def _ticket(tickets: TicketService, province: str, category: str = "trade") -> str:
    draft = TicketDraft("asterisk", province, category, None, None, CALLER, CALLER, None)
    tracking = tickets.create(draft).tracking
    assert tracking is not None
    return tracking


def test_the_pop_shows_the_ivr_path_and_earlier_tickets_of_the_scope(
    engine: Engine, users: dict[str, int], tmp_path: Path
) -> None:
    tickets = tickets_of(engine, tmp_path)
    qom = _ticket(tickets, "qom")
    tehran = _ticket(tickets, "tehran")
    call_id = _queued_call(engine, "1700000003.1")
    hub = DeskEvents(engine)
    hub.push(users["sara"], "asterisk", "1700000003.1", "+989121234567")
    (event,) = hub.after(users["sara"], 0)
    pop = build_pop(engine, event, provinces={"qom"})
    assert pop.number == CALLER and pop.call_id == call_id and pop.province == "qom"
    assert [(s.node, s.key, s.outcome) for s in pop.steps] == [
        ("greeting", "7", "invalid"),
        ("greeting", "0", "transfer_requested"),
    ]
    assert [t.tracking for t in pop.tickets] == [qom]  # not Tehran's
    national = build_pop(engine, event, provinces=None)
    assert {t.tracking for t in national.tickets} == {qom, tehran}
    body = pop.as_json()
    assert body["steps"][0]["at_jalali"].startswith("14") and body["tickets"][0]["tracking"] == qom


def test_a_call_the_ivr_never_answered_pops_up_with_the_network_number(
    engine: Engine, users: dict[str, int]
) -> None:
    hub = DeskEvents(engine)
    hub.push(users["sara"], "twilio", "CA" + "1" * 32, "+989351112233")
    (event,) = hub.after(users["sara"], 0)
    pop = build_pop(engine, event, provinces={"qom"})
    assert (pop.number, pop.call_id, pop.steps, pop.tickets) == ("09351112233", None, (), ())


def test_new_ticket_for_this_call_links_it_once(
    engine: Engine, users: dict[str, int], tmp_path: Path
) -> None:
    tickets = tickets_of(engine, tmp_path)
    calls = CallStore(engine)
    _queued_call(engine, "1700000004.1")
    made = new_ticket_for_call(
        tickets, calls, "1700000004.1", category="trade", actor="sara", province="qom"
    )
    again = new_ticket_for_call(
        tickets, calls, "1700000004.1", category="trade", actor="sara", province="qom"
    )
    assert again == made
    view = tickets.get(made)
    assert view is not None and view.province == "qom" and view.callback_number == CALLER
    assert view.history[0].actor == "sara"
    with engine.connect() as c:
        linked = c.execute(
            text(
                "SELECT t.tracking FROM call c JOIN ticket t ON t.id = c.ticket_id "
                "WHERE c.external_id = '1700000004.1'"
            )
        ).scalar()
    assert linked == made
    with pytest.raises(CallTicketError, match="unknown category"):
        new_ticket_for_call(tickets, calls, "1700000004.1", category="nope", actor="s",
                            province="qom")  # fmt: skip
    with pytest.raises(CallTicketError, match="no call"):
        new_ticket_for_call(tickets, calls, "nope", category="trade", actor="s", province="qom")


def test_attach_to_an_earlier_ticket_of_the_scope_only(
    engine: Engine, users: dict[str, int], tmp_path: Path
) -> None:
    tickets = tickets_of(engine, tmp_path)
    calls = CallStore(engine)
    earlier = _ticket(tickets, "qom")
    elsewhere = _ticket(tickets, "tehran")
    call_id = _queued_call(engine, "1700000005.1")
    with pytest.raises(CallTicketError, match="no ticket"):
        attach_call(tickets, calls, "1700000005.1", elsewhere, actor="sara", provinces={"qom"})
    assert attach_call(tickets, calls, "1700000005.1", earlier, actor="sara",
                       provinces={"qom"}) == earlier  # fmt: skip
    with engine.connect() as c:
        assert c.execute(text(f"SELECT ticket_id FROM call WHERE id = {call_id}")).scalar()
    view = tickets.get(earlier)
    assert view is not None
    last = view.history[-1]
    assert (last.kind, last.new_value, last.actor) == ("call", "asterisk:1700000005.1", "sara")
    (event_id,) = [DeskEvents(engine).push(users["sara"], "asterisk", "1700000005.1")]
    (event,) = DeskEvents(engine).after(users["sara"], 0)
    assert event.id == event_id and build_pop(engine, event, {"qom"}).ticket == earlier


# --- the live view -----------------------------------------------------------------------------


def test_the_live_view_names_agents_by_their_users() -> None:
    snapshot = QueueSnapshot(
        name="124-agents", max_callers=0, strategy="rrmemory", holdtime_s=40, talktime_s=90,
        completed=3, abandoned=1,
        callers=(WaitingCaller(1, "PJSIP/t-1", "1.1", CALLER, 75),
                 WaitingCaller(2, "PJSIP/t-2", "1.2", "", 20)),
        agents=(QueueAgent("Sara", "PJSIP/201", AgentState.PAUSED, True, 2, None, "ناهار"),
                QueueAgent("static", "PJSIP/999", AgentState.FREE, False)),
    )  # fmt: skip
    live = live_view(snapshot, [Member("sara", "PJSIP/201")])
    assert live.longest_wait_s == 75 and len(live.callers) == 2
    assert [(a.name, a.user, a.state, a.paused_reason) for a in live.agents] == [
        ("sara", "sara", "paused", "ناهار"),
        ("static", None, "free", ""),
    ]
    assert live.free_agents == 1


def test_a_callback_stand_in_pops_up_with_the_callbacks_number_and_first_call(
    engine: Engine, users: dict[str, int]
) -> None:
    """An agent who takes a callback's stand-in (``ivr124cb-<attempt>-2``) sees whom they are
    calling back and the path of the call the callback came from."""
    from ivr.callbacks.asterisk import standin_uniqueids
    from ivr.callbacks.service import CallbackService

    first_call = _queued_call(engine, "1700000006.1")
    service = CallbackService(engine)
    callback = service.request("09351112233", "qom", datetime.now(UTC), call_id=first_call)
    assert callback.id is not None
    attempt = service.claim(callback.id, "n1", "asterisk")
    assert attempt is not None and attempt.id is not None
    standin = standin_uniqueids(attempt.id)[1]
    pops = AgentConnectPops(UserStore(engine), DeskEvents(engine), _NoAmi())  # type: ignore[arg-type]
    assert pops.handle(agent_connect("PJSIP/201", standin, caller="124")) is not None
    (event,) = DeskEvents(engine).after(users["sara"], 0)
    pop = build_pop(engine, event, {"qom"})
    assert (pop.number, pop.callback_id, pop.call_id) == ("09351112233", callback.id, first_call)
    assert [s.key for s in pop.steps] == ["7", "0"]
