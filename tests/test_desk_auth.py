"""The desk's login over real HTTP (uvicorn): redirects, cookies, CSRF, timeouts, logout that
ends the session on the server, and throttling counted in the database."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from desk_helpers import PASSWORD, DeskSite, csrf_of, desk_settings, desk_site, post_login


def session_cookie(reply: httpx.Response) -> str:
    """The Set-Cookie header of the session cookie."""
    return next(v for k, v in reply.headers.multi_items() if k == "set-cookie" and "ivr_desk=" in v)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DeskSite]:
    with desk_site(desk_settings(tmp_path / "storage")) as s:
        s.users.add("sara", "agent", password=PASSWORD, province="qom")
        s.users.add("reza", "agent", password=PASSWORD, province="qom")
        yield s


def test_no_session_is_sent_to_the_login_form_and_back(site: DeskSite) -> None:
    client = site.client()
    reply = client.get("/desk/?x=1")
    assert reply.status_code == 303
    location = reply.headers["location"]
    assert location.startswith("/desk/login?next=")
    assert unquote(location.split("next=", 1)[1]) == "/desk/?x=1"

    form = client.get(location)
    assert 'name="username"' in form.text and 'name="password"' in form.text
    assert 'dir="rtl"' in form.text and 'lang="fa"' in form.text
    done = client.post(
        "/desk/login",
        data={
            "username": "sara",
            "password": PASSWORD,
            "csrf_token": csrf_of(form.text),
            "next": "/desk/?x=1",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/desk/?x=1"
    home = client.get("/desk/")
    assert home.status_code == 200 and "sara" in home.text


def test_the_session_cookie_is_httponly_lax_and_signed(site: DeskSite) -> None:
    client = site.client()
    reply = post_login(client, "sara", PASSWORD)
    cookie = next(
        v for k, v in reply.headers.multi_items() if k == "set-cookie" and "ivr_desk=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/desk" in cookie
    assert "Secure" not in cookie  # plain http here; https is the next test
    value = client.cookies["ivr_desk"]
    client.cookies.set(
        "ivr_desk", value[:-2] + ("AA" if not value.endswith("AA") else "BB"), path="/desk"
    )
    assert client.get("/desk/").status_code == 303  # a tampered signature opens nothing


def test_the_cookie_is_secure_when_the_public_address_is_https(tmp_path: Path) -> None:
    settings = desk_settings(tmp_path / "s", public_url="https://124.example.org")
    with desk_site(settings) as site:
        site.users.add("sara", "agent", password=PASSWORD, province="qom")
        client = site.client()
        form = client.get("/desk/login")
        # A Secure cookie is not sent back over plain http: hand it over as a proxy would.
        login_cookie = form.cookies["ivr_desk_login"]
        reply = client.post(
            "/desk/login",
            data={"username": "sara", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
            headers={"cookie": f"ivr_desk_login={login_cookie}"},
        )
    assert reply.status_code == 303
    cookie = next(
        v for k, v in reply.headers.multi_items() if k == "set-cookie" and "ivr_desk=" in v
    )
    assert "Secure" in cookie


def test_login_without_its_csrf_token_is_403_and_opens_no_session(site: DeskSite) -> None:
    client = site.client()
    client.get("/desk/login")
    reply = client.post("/desk/login", data={"username": "sara", "password": PASSWORD})
    assert reply.status_code == 403
    reply = client.post(
        "/desk/login", data={"username": "sara", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert reply.status_code == 403
    assert "ivr_desk" not in client.cookies
    assert client.get("/desk/").status_code == 303


def test_a_wrong_password_is_refused(site: DeskSite) -> None:
    client = site.client()
    reply = post_login(client, "sara", "not the password")
    assert reply.status_code == 401 and "نام کاربری یا گذرواژه درست نیست" in reply.text
    assert client.get("/desk/").status_code == 303


def test_logout_needs_the_token_and_ends_the_session_on_the_server(site: DeskSite) -> None:
    client = site.login("sara")
    page = client.get("/desk/")
    token = csrf_of(page.text)
    old_cookie = client.cookies["ivr_desk"]

    assert client.post("/desk/logout", data={}).status_code == 403
    assert client.post("/desk/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert client.get("/desk/").status_code == 200  # nothing changed

    reply = client.post("/desk/logout", data={"csrf_token": token})
    assert reply.status_code == 303 and reply.headers["location"] == "/desk/login"
    # The browser dropped the cookie; a copy of it kept elsewhere opens nothing either.
    thief = site.client()
    thief.cookies.set("ivr_desk", old_cookie, path="/desk")
    assert thief.get("/desk/").status_code == 303


def test_a_session_ends_after_the_idle_time_and_lives_while_used(tmp_path: Path) -> None:
    with desk_site(desk_settings(tmp_path / "s", desk_idle_seconds=2)) as site:
        site.users.add("sara", "agent", password=PASSWORD, province="qom")
        client = site.login("sara")
        for _ in range(3):  # used every second: 3 s in all, past the idle time, still alive
            time.sleep(1.0)
            assert client.get("/desk/").status_code == 200
        time.sleep(2.6)
        reply = client.get("/desk/")
    assert reply.status_code == 303 and reply.headers["location"].startswith("/desk/login")


def test_a_session_ends_after_its_lifetime_even_while_used(tmp_path: Path) -> None:
    settings = desk_settings(tmp_path / "s", desk_session_seconds=3, desk_idle_seconds=60)
    with desk_site(settings) as site:
        site.users.add("sara", "agent", password=PASSWORD, province="qom")
        client = site.login("sara")
        assert client.get("/desk/").status_code == 200
        time.sleep(3.5)
        assert client.get("/desk/").status_code == 303


def test_five_wrong_passwords_for_a_user_refuse_the_next_try_with_429(
    site: DeskSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ivr.users.sessions")
    for n in range(5):  # from different addresses: the count is per user too
        reply = post_login(site.client(f"127.0.0.{n + 2}"), "sara", "wrong password")
        assert reply.status_code == 401
    reply = post_login(site.client("127.0.0.9"), "sara", PASSWORD)  # even the right password
    assert reply.status_code == 429
    assert "تلاش‌های ناموفق زیاد بود" in reply.text
    assert any("too many wrong passwords" in r.getMessage() for r in caplog.records)
    # Another user is not locked out by sara's guesser.
    assert post_login(site.client("127.0.0.10"), "reza", PASSWORD).status_code == 303


def test_five_wrong_passwords_from_one_address_are_counted_on_every_node(
    tmp_path: Path,
) -> None:
    settings = desk_settings(tmp_path / "s")
    with desk_site(settings) as node1:
        node1.users.add("sara", "agent", password=PASSWORD, province="qom")
        for name in ("a1", "a2", "a3", "a4", "a5"):  # a sprayer: many names, one address
            assert post_login(node1.client("127.0.0.5"), name, "guess").status_code == 401
        with desk_site(settings) as node2:  # a second node on the same database agrees
            assert post_login(node2.client("127.0.0.5"), "sara", PASSWORD).status_code == 429
            assert post_login(node2.client("127.0.0.6"), "sara", PASSWORD).status_code == 303


def test_a_disabled_user_loses_the_open_session(site: DeskSite) -> None:
    client = site.login("sara")
    assert client.get("/desk/").status_code == 200
    site.users.disable("sara")
    assert client.get("/desk/").status_code == 303


def test_login_never_sends_the_browser_to_another_site(site: DeskSite) -> None:
    reply = post_login(site.client(), "sara", PASSWORD, next="https://evil.example/desk")
    assert reply.headers["location"] == "/desk/"
    reply = post_login(site.client(), "sara", PASSWORD, next="//evil.example/desk")
    assert reply.headers["location"] == "/desk/"


def test_the_banner_says_how_to_make_the_first_administrator(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_STORAGE_DIR"] = str(tmp_path)
    ivr = str(Path(sys.executable).with_name("ivr"))
    done = subprocess.run(
        [ivr, "settings", "--banner"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "/desk/" in done.stdout
    assert "users add admin --role admin" in done.stdout


def test_housekeeping_forgets_sessions_past_their_lifetime_and_old_login_attempts(
    site: DeskSite,
) -> None:
    """The scheduler's hourly housekeeping job deletes what can no longer count; a live
    session and a recent wrong try stay."""
    from types import SimpleNamespace

    from ivr import scheduler
    from ivr.users.sessions import Limits, SessionStore

    store = SessionStore(site.services.tickets.engine, Limits.from_settings(site.settings))
    user = site.users.get("sara")
    assert user is not None
    _old_token, old = store.open(user, "127.0.0.1")
    _new_token, new = store.open(user, "127.0.0.1")
    assert store.authenticate("sara", "wrong password", "10.0.0.9") is None
    assert store.authenticate("sara", "wrong again", "10.0.0.9") is None
    db = site.settings.storage_dir / "ivr.db"
    with sqlite3.connect(db) as c:
        c.execute(
            "UPDATE desk_session SET created_at = datetime('now', '-13 hours') WHERE id = ?",
            (old.id,),
        )
        c.execute(
            "UPDATE login_attempt SET at = datetime('now', '-1 hours') WHERE id = "
            "(SELECT min(id) FROM login_attempt)"
        )
    runtime = SimpleNamespace(services=site.services, settings=site.settings)
    scheduler.housekeeping(runtime)  # type: ignore[arg-type]
    with sqlite3.connect(db) as c:
        sessions = {row[0] for row in c.execute("SELECT id FROM desk_session")}
        attempts = c.execute("SELECT count(*) FROM login_attempt").fetchone()[0]
    assert sessions == {new.id}
    assert attempts == 1
