"""Callbacks that keep their place: a caller who leaves the agents' queue (or finds no agent) is
called back in the order of their original entry time, together with the callers still waiting.

What the call flow needs (the "no agent" menu, the key 1 in the queue)::

    from ivr.callbacks.service import CallbackService, CallbackError
    callbacks = CallbackService.from_settings(engine, settings)
    row = callbacks.request(number, province, entered_at, call_id=..., ticket_id=...)
    #   entered_at: when the caller joined the queue they are leaving (the queue's join time in
    #   the call record), or now for a request from the "no agent" menu. The same number asking
    #   again gets the same open callback back. CallbackError: a number we cannot call.

    from ivr.calendar.agent_hours import AgentHours, load_agent_hours
    hours = AgentHours(load_agent_hours(), calendar_cache.get)
    hours.is_open(province, moment); hours.next_opening(province, moment)  # «شنبه ساعت هشت»

What Twilio's status callback needs: ``callbacks.finish(attempt_id, twilio_outcome(CallStatus))``
(``ivr.callbacks.twilio``; routes in ``ivr/web/twilio_queue.py``); URLs carry ``?attempt=<id>``.

The modules:

* ``models`` — the ``callback`` and ``callback_attempt`` tables, statuses and outcomes;
* ``service`` — their only writer (requests, cancel, list; claims, outcomes, leases);
* ``dispatcher`` — one pass of the rules (entry order, look-ahead, hours, leases), run by the
  scheduler's leader through ``job``;
* ``queue_view`` / ``dialing`` — what a pass asks of the PBX: the queue, and a dialer;
* ``asterisk`` — both for Asterisk (AMI QueueStatus, Originate of a stand-in into the queue);
* ``twilio`` — a dialer for Twilio's REST API (caller-first);
* ``twilio_view`` / ``agent_line`` — Twilio's queue: waiting callers from its Queues REST API,
  free agents from the agents' line webhooks (the ``agent_line`` table).
"""
