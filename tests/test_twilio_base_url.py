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


paths = st.one_of(
    st.sampled_from(["/twilio/gather", "/twilio/voice", "/ivr/twilio/recorded"]),
    st.text(alphabet="/abcz09?#\\%-_.~ :", min_size=1, max_size=30).map(lambda p: "/" + p),
)
queries = st.one_of(  # what a request line carries: no spaces, controls or fragment
    st.just(b""),
    st.sampled_from([b"turn=3", b"turn=12&x=1"]),
    st.text(alphabet="abz09=&%+?/;:@!$'()*,-._~", max_size=20).map(str.encode),
)


def signed_request(host: str | None, server: Any, root: str, path: str, query: bytes) -> Request:
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    scope = {"type": "http", "scheme": "https", "server": server, "path": path, "root_path": root,
             "query_string": query, "headers": headers, "method": "POST"}  # fmt: skip
    return Request(scope)


@settings(max_examples=400, deadline=None)
@given(host=hosts, server=servers, root=roots, path=paths, query=queries)
def test_the_url_checked_is_starlettes_request_url(
    host: str | None, server: Any, root: str, path: str, query: bytes
) -> None:
    """The signature is checked against the URL the request was made to: exactly
    ``str(request.url)``, or under the proxy's address the same path and query."""
    request = signed_request(host, server, root, path, query)
    expected = str(signed_request(host, server, root, path, query).url)
    assert twilio._public_url(request, NO_PROXY.settings) == expected  # type: ignore[arg-type]
    proxy = SimpleNamespace(public_url="https://124.example.ir/")
    url = signed_request(host, server, root, path, query).url
    tail = url.path + (f"?{url.query}" if url.query else "")
    assert twilio._public_url(request, proxy) == "https://124.example.ir" + tail  # type: ignore[arg-type]
