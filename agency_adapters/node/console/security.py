"""Sign-in, sessions, CSRF and the headers every console page carries.

How a request is handled, in order (each a middleware, outermost first):

1. ``security_headers``: every response gets a strict Content-Security-Policy (only this
   origin's own scripts, styles and images; no inline script, no framing, forms post only
   here), ``X-Content-Type-Options``, ``Referrer-Policy: no-referrer`` and, for everything
   but the vendored static assets, ``Cache-Control: no-store`` (pages show case data; a
   shared computer's cache must not keep them). Over TLS, HSTS.
2. ``sessions``: the session cookie (HttpOnly, SameSite=Strict, Secure and ``__Host-``
   over TLS) names a server-side session in the node's database, which holds only the
   token's hash and enforces the idle and absolute timeouts
   (:mod:`agency_adapters.node.users`). No session: a page redirects to the sign-in page,
   anything else is 401. Only the sign-in page, the static assets and ``/healthz`` are
   open.
3. ``csrf``: every POST carries the session's CSRF token in a ``csrf_token`` form field,
   compared in constant time; before sign-in, a double-submit token in its own cookie
   protects the sign-in form itself (login CSRF).

Role checks are per view: :func:`requires` names the console roles that may use it; a
user without one gets a 403 page that says which role it needs and shows no data.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from aiohttp import web

from agency_adapters.node.console.keys import SERVICES, SESSION, SETTINGS
from agency_adapters.node.users import Session, check_csrf
from hub.crypto import new_token

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "OPEN_PATHS",
    "Handler",
    "csrf",
    "current_session",
    "login_csrf_token",
    "requires",
    "security_headers",
    "sessions",
    "set_login_csrf_cookie",
]

log = logging.getLogger("seh.console")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
OPEN_PATHS = ("/sign-in", "/healthz")
STATIC_PREFIX = "/static/"
LOGIN_CSRF_COOKIE = "seh_signin_csrf"


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _harden(request, response)
        raise
    _harden(request, response)
    return response


def _harden(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if request.path.startswith(STATIC_PREFIX) and response.status == 200:
        headers["Cache-Control"] = "public, max-age=3600"
    else:
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    if request.app[SETTINGS].tls:
        headers["Strict-Transport-Security"] = "max-age=31536000"


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(STATIC_PREFIX)


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    token = request.cookies.get(settings.session_cookie)
    session = None
    if token:
        session = request.app[SERVICES].users.session(token)
    if session is not None:
        request[SESSION] = session
    elif not _is_open(request.path):
        if request.method == "GET":
            target = request.path_qs if request.path != "/" else "/"
            raise web.HTTPSeeOther(location=f"/sign-in?next={_safe_next(target)}")
        raise web.HTTPUnauthorized(text="Sign in first.")
    return await handler(request)


def _safe_next(target: str) -> str:
    """Only a local path may be a redirect target (no open redirect to another site)."""
    from urllib.parse import quote

    if not target.startswith("/") or target.startswith("//"):
        return "/"
    return quote(target, safe="/")


def current_session(request: web.Request) -> Session:
    session: Session | None = request.get(SESSION)
    if session is None:  # pragma: no cover - the sessions middleware guarantees one
        raise web.HTTPUnauthorized(text="Sign in first.")
    return session


def login_csrf_token(request: web.Request) -> str:
    """The pre-sign-in CSRF token: the cookie's, or a new one to set."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()


def set_login_csrf_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.app[SETTINGS].tls,
        path="/sign-in",
        max_age=3600,
    )


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return await handler(request)
    form = await request.post()
    submitted = form.get("csrf_token")
    if not isinstance(submitted, str) or not submitted:
        log.info("csrf: %s %s without a token", request.method, request.path)
        raise web.HTTPForbidden(text="This form has expired. Go back, reload and try again.")
    session: Session | None = request.get(SESSION)
    if session is not None:
        ok = check_csrf(session, submitted)
    else:
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        ok = bool(cookie) and hmac.compare_digest(cookie.encode(), submitted.encode())
    if not ok:
        log.info("csrf: %s %s with a wrong token", request.method, request.path)
        raise web.HTTPForbidden(text="This form has expired. Go back, reload and try again.")
    return await handler(request)


def requires(*roles: str) -> Callable[[Handler], Handler]:
    """Let only users holding one of ``roles`` use the view; others get a 403 page."""

    def decorate(view: Handler) -> Handler:
        @wraps(view)
        async def guarded(request: web.Request) -> web.StreamResponse:
            session = current_session(request)
            if not session.user.roles & set(roles):
                raise RoleRequired(roles)
            return await view(request)

        guarded.required_roles = roles  # type: ignore[attr-defined]  # read by the route tests
        return guarded

    return decorate


class RoleRequired(web.HTTPForbidden):
    """A signed-in user without the role a page needs."""

    def __init__(self, roles: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.roles = roles
