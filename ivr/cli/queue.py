"""The agents' queue on Asterisk, as AMI QueueStatus reports it: who waits, who answers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

if TYPE_CHECKING:
    from ivr.telephony.queue_status import QueueSnapshot

app = typer.Typer(no_args_is_help=True, help="The agents' queue on Asterisk.")


@app.command("status")
def queue_status(
    queue: Annotated[
        str | None, typer.Option(help="one queue (default: IVR_AGENT_QUEUE); 'all' for every")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for Asterisk")] = 5.0,
) -> None:
    """Callers waiting, the longest wait, and every agent with their state."""
    from ivr.telephony.ami import AmiClient, AmiError
    from ivr.telephony.queue_status import queue_status as fetch

    settings = get_settings()
    if not settings.ami_username:
        fail("AMI is not configured: set IVR_AMI_USERNAME and IVR_AMI_SECRET (manager.conf)")
    name = settings.agent_queue if queue is None else (None if queue == "all" else queue)
    ami = AmiClient(
        settings.ami_host,
        settings.ami_port,
        settings.ami_username,
        settings.ami_secret,
        action_timeout=timeout,
        connect_timeout=min(timeout, 3.0),
    )
    try:
        ami.connect(timeout=timeout)
        snapshots = fetch(ami, name)
    except AmiError as exc:
        fail(f"cannot ask Asterisk at {settings.ami_host}:{settings.ami_port}: {exc}")
    finally:
        ami.close()
    if name is not None and name not in snapshots:
        fail(f"Asterisk has no queue {name!r}")
    if as_json:
        typer.echo(json.dumps([_as_json(s) for s in snapshots.values()], indent=2))
        return
    for snapshot in snapshots.values():
        typer.echo(_as_text(snapshot))


def _as_json(s: QueueSnapshot) -> dict[str, object]:
    from ivr.clock import iso_utc

    return {
        "queue": s.name,
        "callers_waiting": len(s.callers),
        "longest_wait_s": s.longest_wait_s,
        "holdtime_s": s.holdtime_s,
        "completed": s.completed,
        "abandoned": s.abandoned,
        "callers": [
            {"position": c.position, "caller_id": c.caller_id, "wait_s": c.wait_s}
            for c in s.callers
        ],
        "agents": [
            {
                "name": a.name,
                "interface": a.interface,
                "state": a.state.value,
                "dynamic": a.dynamic,
                "calls_taken": a.calls_taken,
                "last_call": iso_utc(a.last_call),
                "paused_reason": a.paused_reason,
            }
            for a in s.agents
        ],
    }


def _as_text(s: QueueSnapshot) -> str:
    from ivr.clock import jalali

    lines = [
        f"{s.name}: {len(s.callers)} caller(s) waiting, longest wait {_mmss(s.longest_wait_s)}"
        f" (average answered wait {_mmss(s.holdtime_s)}; {s.completed} answered,"
        f" {s.abandoned} abandoned)",
    ]
    for c in s.callers:
        lines.append(f"  {c.position:>3}. {c.caller_id or 'unknown number':<15} {_mmss(c.wait_s)}")
    lines.append(f"  agents: {len(s.agents)} ({s.free_agents} free)")
    for a in s.agents:
        detail = f", {a.paused_reason}" if a.paused_reason else ""
        last = f", last call {jalali(a.last_call)}" if a.last_call else ""
        lines.append(
            f"    {a.name:<20} {a.interface:<28} {a.state.value}{detail}"
            f" ({a.calls_taken} calls{last})"
        )
    return "\n".join(lines)


def _mmss(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"
