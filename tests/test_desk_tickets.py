"""The desk's ticket pages and actions over real HTTP (uvicorn): province scope on every door
(page, recording, JSON, actions), range requests on the recording, CSRF on the actions, the
search, filters and pages of the list, and history lines naming the user."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from desk_helpers import PASSWORD, DeskSite, csrf_of, desk_settings, desk_site

from ivr.tickets.service import TicketDraft


@pytest.fixture
def site(tmp_path: Path, recording_wav: Path) -> Iterator[DeskSite]:
    with desk_site(desk_settings(tmp_path / "storage")) as s:
        s.users.add("tehran-sup", "supervisor", password=PASSWORD, province="tehran")
        s.users.add("qom-sup", "supervisor", password=PASSWORD, province="qom")
        s.users.add("qom-agent", "agent", password=PASSWORD, province="qom")
        s.users.add("boss", "national", password=PASSWORD)
        yield s


def make_ticket(
    site: DeskSite, province: str = "qom", callback: str = "09121234567", wav: Path | None = None
) -> str:
    path = None
    if wav is not None:
        site.settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        target = site.settings.recordings_dir / f"twilio-{province}-{callback}.wav"
        shutil.copy(wav, target)
        path = str(target)
    created = site.services.tickets.create(
        TicketDraft(
            channel="twilio",
            province=province,
            category="industry",
            place=None,
            recording_path=path,
            caller_number="+98" + callback[1:],
            callback_number=callback,
            national_id=None,
        )
    )
    assert created.tracking
    return created.tracking


def status_of(site: DeskSite, tracking: str) -> str:
    with sqlite3.connect(site.settings.storage_dir / "ivr.db") as c:
        return c.execute("SELECT status FROM ticket WHERE tracking = ?", (tracking,)).fetchone()[0]


def test_a_tehran_supervisor_finds_no_qom_ticket_by_any_door(
    site: DeskSite, recording_wav: Path
) -> None:
    tracking = make_ticket(site, "qom", wav=recording_wav)
    tehran = site.login("tehran-sup")
    assert tehran.get(f"/desk/tickets/{tracking}").status_code == 404
    assert tehran.get(f"/desk/tickets/{tracking}/recording").status_code == 404
    assert tehran.get(f"/desk/tickets/{tracking}.json").status_code == 404
    assert f"/desk/tickets/{tracking}" not in tehran.get(f"/desk/tickets?q={tracking}").text
    token = csrf_of(tehran.get("/desk/tickets").text)
    reply = tehran.post(
        f"/desk/tickets/{tracking}/status", data={"status": "in_review", "csrf_token": token}
    )
    assert reply.status_code == 404
    assert status_of(site, tracking) == "registered"

    # The same doors open for Qom's supervisor and for national staff.
    for name in ("qom-sup", "boss"):
        client = site.login(name)
        assert client.get(f"/desk/tickets/{tracking}").status_code == 200
        assert client.get(f"/desk/tickets/{tracking}.json").json()["tracking"] == tracking
        assert client.get(f"/desk/tickets/{tracking}/recording").status_code == 200
        assert f"/desk/tickets/{tracking}" in client.get(f"/desk/tickets?q={tracking}").text


def test_json_without_a_session_is_401_and_a_page_redirects(site: DeskSite) -> None:
    tracking = make_ticket(site)
    client = site.client()
    assert client.get(f"/desk/tickets/{tracking}.json").status_code == 401
    reply = client.get(f"/desk/tickets/{tracking}/recording")
    assert reply.status_code == 303 and reply.headers["location"].startswith("/desk/login")


def test_the_recording_answers_range_requests(site: DeskSite, recording_wav: Path) -> None:
    tracking = make_ticket(site, wav=recording_wav)
    client = site.login("qom-agent")
    whole = client.get(f"/desk/tickets/{tracking}/recording")
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav"
    assert whole.content == recording_wav.read_bytes()
    assert whole.headers.get("accept-ranges") == "bytes"
    part = client.get(f"/desk/tickets/{tracking}/recording", headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{len(whole.content)}"
    assert part.content == whole.content[100:300]


def test_an_action_without_the_csrf_token_is_403_and_changes_nothing(site: DeskSite) -> None:
    tracking = make_ticket(site)
    client = site.login("qom-sup")
    reply = client.post(f"/desk/tickets/{tracking}/status", data={"status": "in_review"})
    assert reply.status_code == 403
    reply = client.post(
        f"/desk/tickets/{tracking}/status", data={"status": "in_review", "csrf_token": "x"}
    )
    assert reply.status_code == 403
    assert status_of(site, tracking) == "registered"


def test_status_refer_and_assign_are_history_lines_naming_the_user(site: DeskSite) -> None:
    tracking = make_ticket(site)
    client = site.login("qom-sup")
    token = csrf_of(client.get(f"/desk/tickets/{tracking}").text)

    def post(action: str, **data: str) -> None:
        reply = client.post(
            f"/desk/tickets/{tracking}/{action}", data={**data, "csrf_token": token}
        )
        assert reply.status_code == 303
        assert "error=" not in reply.headers["location"], reply.headers["location"]

    post("status", status="in_review")
    post("assign", assignee="qom-agent")
    post("refer", agency="provincial_office", note="مال اداره کل است")
    # Closing without a note is refused by the transition table: nothing changes.
    reply = client.post(
        f"/desk/tickets/{tracking}/status", data={"status": "closed", "csrf_token": token}
    )
    assert "error=transition" in reply.headers["location"]

    data = client.get(f"/desk/tickets/{tracking}.json").json()
    assert data["status"] == "referred" and data["agency"] == "provincial_office"
    assert data["assignee"] == "qom-agent"
    by_kind = {h["kind"]: h for h in data["history"]}
    assert by_kind["assigned"]["actor"] == "qom-sup"
    assert by_kind["agency"]["actor"] == "qom-sup"
    assert [h["new"] for h in data["history"] if h["kind"] == "status"] == [
        "in_review",
        "referred",
    ]
    assert all(h["actor"] == "qom-sup" for h in data["history"] if h["kind"] != "created")
    # The referral went to the outbox, addressed to the agency.
    with sqlite3.connect(site.settings.storage_dir / "ivr.db") as c:
        mails = c.execute("SELECT step, recipient, subject FROM notification").fetchall()
    assert mails == [
        ("referral-provincial_office", "dabirkhaneh@sanat-qom.example", mails[0][2]),
    ]
    assert "ارجاع درخواست" in mails[0][2]
    page = client.get(f"/desk/tickets/{tracking}").text
    assert 'class="actor">qom-sup<' in page


def test_an_agent_cannot_hand_a_ticket_to_someone_else(site: DeskSite) -> None:
    tracking = make_ticket(site)
    client = site.login("qom-agent")
    token = csrf_of(client.get(f"/desk/tickets/{tracking}").text)
    reply = client.post(
        f"/desk/tickets/{tracking}/assign", data={"assignee": "qom-sup", "csrf_token": token}
    )
    assert reply.status_code == 403
    reply = client.post(
        f"/desk/tickets/{tracking}/assign", data={"assignee": "qom-agent", "csrf_token": token}
    )
    assert reply.status_code == 303
    assert client.get(f"/desk/tickets/{tracking}.json").json()["assignee"] == "qom-agent"
    home = client.get("/desk/").text
    assert tracking in home


def test_the_list_searches_by_tracking_or_last_digits_and_pages(site: DeskSite) -> None:
    numbers = [f"0912000{n:04d}" for n in range(7)]
    made = [make_ticket(site, callback=number) for number in numbers]
    make_ticket(site, "tehran", callback="09127770000")
    client = site.login("qom-agent")

    def found(q: str) -> set[str]:
        reply = client.get("/desk/tickets", params={"q": q})
        assert reply.status_code == 200, (q, reply.status_code)
        return {t for t in made if f"/desk/tickets/{t}" in reply.text}

    assert found(made[3]) == {made[3]}
    assert found("۰۰۰۵") == {made[5]}  # the last digits, typed in Persian digits
    assert found("0912") == set()  # the start of a number is not its end
    assert found("0000") == {made[0]}
    assert "۷۷۷۰۰۰۰" not in client.get("/desk/tickets", params={"q": "7770000"}).text
    for words in ("رضایی", "abc", "²³⁴"):  # no digits to search by: nothing found, no error
        assert found(words) == set()

    seen: list[str] = []
    url = "/desk/tickets?status=registered"
    site_pages = 0
    while url:
        html = client.get(url).text
        seen += [t for t in made if f">{_fa(t)}<" in html]
        site_pages += 1
        nxt = [
            line
            for line in html.split('"')
            if line.startswith("/desk/tickets?") and "before=" in line
        ]
        url = nxt[0].replace("&amp;", "&") if nxt else ""
        assert site_pages < 10
    assert sorted(seen) == sorted(made)


def _fa(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))


def test_date_filters_take_jalali_and_iso(site: DeskSite) -> None:
    import jdatetime

    from ivr.clock import tehran_date

    tracking = make_ticket(site)
    client = site.login("qom-agent")
    created = client.get(f"/desk/tickets/{tracking}.json").json()["created_at"]  # ISO, UTC
    # A typed date is a Tehran day: from 20:30 UTC on, that is already the next UTC day's.
    day = tehran_date(datetime.fromisoformat(created))
    iso = client.get("/desk/tickets", params={"from": day.isoformat(), "to": day.isoformat()}).text
    assert _fa(tracking) in iso
    jalali = jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")
    assert _fa(tracking) in client.get("/desk/tickets", params={"from": _fa(jalali)}).text
    assert _fa(tracking) not in client.get("/desk/tickets", params={"to": "1390/01/01"}).text
    assert "خوانا نیست" in client.get("/desk/tickets", params={"from": "banana"}).text
    for far in ("9999-12-31", "0001-01-01"):  # a day past the last one overflowed: 500
        reply = client.get("/desk/tickets", params={"to": far})
        assert reply.status_code == 200 and "خوانا نیست" in reply.text, far


def test_an_id_no_row_can_have_is_refused_before_the_database(site: DeskSite) -> None:
    """Past 2**63 SQLite's driver overflows: the URL is refused as it is read (422)."""
    client = site.login("qom-agent")
    beyond = "9" * 20
    assert client.get("/desk/tickets", params={"before": beyond}).status_code == 422
    assert client.get(f"/desk/pop/{beyond}").status_code == 422
    assert client.get(f"/desk/tickets?before={2**63 - 1}").status_code == 200


def test_my_work_shows_the_callbacks_due_and_the_callers_waiting_in_my_province(
    site: DeskSite,
) -> None:
    from datetime import timedelta

    from ivr.clock import utcnow

    now = utcnow()
    site.services.callbacks.request("09120000001", "qom", now - timedelta(minutes=3))
    site.services.callbacks.request("09120000002", "tehran", now - timedelta(minutes=2))
    joined = (now - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    stale = (now - timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(site.settings.storage_dir / "ivr.db") as c:
        # As the PBX's QueueCallerJoin leaves them: joined, not left, call not ended.
        for sid, caller, province, at in (
            ("w1", "09350000001", "qom", joined),
            ("w2", "09350000002", "tehran", joined),
            ("w3", "09350000003", "qom", stale),  # a lost leave event, not a caller
        ):
            c.execute(
                "INSERT INTO call (channel, external_id, caller, province, started_at, state,"
                " turn, queue, queue_joined_at) VALUES ('asterisk', ?, ?, ?, ?, '{}', 0,"
                " '124-agents', ?)",
                (sid, caller, province, at, at),
            )
    page = site.login("qom-agent").get("/desk/").text
    assert "۰۹۱۲۰۰۰۰۰۰۱" in page and "۰۹۱۲۰۰۰۰۰۰۲" not in page
    assert "۰۹۳۵۰۰۰۰۰۰۱" in page
    assert "۰۹۳۵۰۰۰۰۰۰۲" not in page and "۰۹۳۵۰۰۰۰۰۰۳" not in page
    national = site.login("boss").get("/desk/").text
    assert "۰۹۱۲۰۰۰۰۰۰۲" in national and "۰۹۳۵۰۰۰۰۰۰۲" in national


def test_an_uploaded_wav_becomes_the_answer_in_the_prompts_format(
    site: DeskSite, recording_wav: Path, tmp_path: Path
) -> None:
    """The agent's own recording (a WAV of any rate) is converted to 8 kHz mono and served as
    the answer; a file that is not audio is refused and stores nothing."""
    import wave

    tracking = make_ticket(site)
    agent = site.login("qom-agent")
    token = csrf_of(agent.get(f"/desk/tickets/{tracking}").text)
    bad = agent.post(
        f"/desk/tickets/{tracking}/answer",
        data={"text": "پاسخ", "csrf_token": token},
        files={"audio": ("answer.wav", b"not a wav at all", "audio/wav")},
    )
    assert bad.status_code == 303 and "error=audio" in bad.headers["location"]
    assert status_of(site, tracking) == "registered"

    loud = tmp_path / "agent-16k.wav"
    with wave.open(str(recording_wav)) as src, wave.open(str(loud), "wb") as out:
        frames = src.readframes(src.getnframes())
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)  # not the prompts' rate: converted
        out.writeframes(frames)
    reply = agent.post(
        f"/desk/tickets/{tracking}/answer",
        data={"text": "پاسخ ضبط‌شده", "csrf_token": token},
        files={"audio": ("answer.wav", loud.read_bytes(), "audio/wav")},
    )
    assert reply.status_code == 303 and "done=answered" in reply.headers["location"]
    assert status_of(site, tracking) == "answered"
    served = agent.get(f"/desk/tickets/{tracking}/answer.wav")
    assert served.status_code == 200
    stored = tmp_path / "served.wav"
    stored.write_bytes(served.content)
    with wave.open(str(stored)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() / w.getframerate() > 1.0
