"""The base of the URLs a TwiML answer names: made once per address, it must still be exactly
what Starlette's ``request.base_url`` gives for that request (property-based)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from ivr.web import twilio

hosts = st.one_of(
    st.none(),
    st.sampled_from(["127.0.0.1:8080", "ivr.example.ir", "[::1]:9000", "IVR.example.ir:443"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-:", min_size=1, max_size=40),
)
addresses = st.tuples(st.sampled_from(["127.0.0.1", "10.0.0.5", "::1"]), st.integers(1, 65535))
servers = st.one_of(st.none(), addresses, addresses.map(list))  # ASGI allows either
roots = st.sampled_from(["", "/", "/ivr", "/ivr/", "/a/b"])


def request_for(scheme: str, host: str | None, server: Any, root: str) -> Request:
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    scope = {
        "type": "http",
        "scheme": scheme,
        "server": server,
        "path": f"{root.rstrip('/')}/twilio/gather",
        "root_path": root,
        "query_string": b"turn=3",
        "headers": headers,
        "method": "POST",
    }
    return Request(scope)


NO_PROXY = SimpleNamespace(settings=SimpleNamespace(public_url=""))


@settings(max_examples=300, deadline=None)
@given(scheme=st.sampled_from(["http", "https"]), host=hosts, server=servers, root=roots)
def test_base_is_starlettes_base_url(scheme: str, host: str | None, server: Any, root: str) -> None:
    expected = str(request_for(scheme, host, server, root).base_url).rstrip("/")
    assert twilio._base(NO_PROXY, request_for(scheme, host, server, root)) == expected  # type: ignore[arg-type]


def test_public_url_wins_over_the_request() -> None:
    behind_proxy = SimpleNamespace(
        settings=SimpleNamespace(public_url="https://124.example.ir/ivr/")
    )
    request = request_for("http", "10.0.0.5:8080", ("10.0.0.5", 8080), "")
    assert twilio._base(behind_proxy, request) == "https://124.example.ir/ivr"  # type: ignore[arg-type]
