"""Sign in and sign out."""

from __future__ import annotations

import logging

from aiohttp import web

from agency_adapters.node.console.forms import FormErrors
from agency_adapters.node.console.keys import SERVICES, SETTINGS
from agency_adapters.node.console.rendering import render
from agency_adapters.node.console.security import (
    LOGIN_CSRF_COOKIE,
    current_session,
    login_csrf_token,
    set_login_csrf_cookie,
)
from agency_adapters.node.users import SignInRefused

__all__ = ["health", "home", "sign_in_form", "sign_in_submit", "sign_out"]

log = logging.getLogger("seh.console")

REFUSED = "The username or password is not right, or the account is locked or disabled."


def _next(value: object) -> str:
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
        return value
    return "/inbox"


def _page(
    request: web.Request,
    *,
    errors: FormErrors | None = None,
    username: str = "",
    next_path: str = "/inbox",
    notice: str | None = None,
    status: int = 200,
) -> web.Response:
    services = request.app[SERVICES]
    token = login_csrf_token(request)
    response = render(
        request,
        "sign_in.html",
        {
            "errors": errors,
            "username": username,
            "next": next_path,
            "notice": notice,
            "signin_csrf": token,
            "max_failures": services.users.settings.max_failures,
        },
        title="Sign in",
        status=status,
    )
    set_login_csrf_cookie(request, response, token)
    return response


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    notice = None
    if request.query.get("ended") == "1":
        notice = "You have been signed out."
    elif "next" in request.query:
        notice = "Sign in to continue. Sessions end after a period without activity."
    return _page(request, next_path=_next(request.query.get("next")), notice=notice)


async def sign_in_submit(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    settings = request.app[SETTINGS]
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_path = _next(form.get("next"))
    errors = FormErrors()
    if not username:
        errors.add("username", "Enter your username")
    if not password:
        errors.add("password", "Enter your password")
    if errors:
        return _page(request, errors=errors, username=username, next_path=next_path, status=400)
    try:
        user = services.users.authenticate(username, password, remote=request.remote or "")
    except SignInRefused as refused:
        # One answer for every reason; the reason goes to the log, not the page.
        log.info("sign-in refused: %s", refused.reason)
        errors.add("username", REFUSED)
        return _page(request, errors=errors, username=username, next_path=next_path, status=401)
    ticket = services.users.start_session(user)
    log.info("sign-in: %s", user.user_ref)
    response = web.HTTPSeeOther(location=next_path)
    response.set_cookie(
        settings.session_cookie,
        ticket.token,
        httponly=True,
        samesite="Strict",
        secure=settings.tls,
        path="/",
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/sign-in")
    raise response


async def sign_out(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    settings = request.app[SETTINGS]
    session = current_session(request)
    token = request.cookies.get(settings.session_cookie, "")
    services.users.end_session(token)
    log.info("sign-out: %s", session.user.user_ref)
    response = web.HTTPSeeOther(location="/sign-in?ended=1")
    response.del_cookie(settings.session_cookie, path="/")
    raise response


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(location="/inbox")


async def health(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})
