"""The desk's cookies: a signed session token, and the login form's own CSRF token.

The cookie holds only a random token, signed (itsdangerous) so a forged or truncated value is
refused before the database is asked; the session itself is a row (ivr.users.sessions), which
is what lets logout and the idle limit end it everywhere.
"""

from __future__ import annotations

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ivr.settings import Settings

SESSION_COOKIE = "ivr_desk"
LOGIN_COOKIE = "ivr_desk_login"
"""Carries the login form's CSRF token (no session exists yet to hold it)."""
COOKIE_PATH = "/desk"
LOGIN_TOKEN_SECONDS = 3600


class CookieSigner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session = URLSafeTimedSerializer(settings.secret, salt="ivr-desk-session")
        self._login = URLSafeTimedSerializer(settings.secret, salt="ivr-desk-login")

    @property
    def secure(self) -> bool:
        """Secure cookies when the public address is https (behind a proxy that ends TLS)."""
        return self.settings.public_url.startswith("https://")

    # -- the session ----------------------------------------------------------------------------

    def session_token(self, request: Request) -> str | None:
        """The token of the request's session cookie, if its signature holds and it is not
        older than a session may live."""
        value = request.cookies.get(SESSION_COOKIE)
        if not value:
            return None
        try:
            return str(
                self._session.loads(value, max_age=int(self.settings.desk_session_seconds) + 1)
            )
        except BadSignature:  # also SignatureExpired
            return None

    def set_session(self, response: Response, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self._session.dumps(token),
            max_age=int(self.settings.desk_session_seconds),
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=self.secure
        )

    # -- the login form -------------------------------------------------------------------------

    def login_token(self, request: Request) -> str | None:
        value = request.cookies.get(LOGIN_COOKIE)
        if not value:
            return None
        try:
            return str(self._login.loads(value, max_age=LOGIN_TOKEN_SECONDS))
        except BadSignature:
            return None

    def new_login_token(self, response: Response, token: str) -> None:
        """Set the login form's token as a cookie (the form carries the same value)."""
        response.set_cookie(
            LOGIN_COOKIE,
            self._login.dumps(token),
            max_age=LOGIN_TOKEN_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )
