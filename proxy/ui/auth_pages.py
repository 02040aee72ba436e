"""Sign-in and sign-out.

    GET  /ui                 the queue when signed in, else the sign-in page
    GET  /ui/signin          the form (a gateway key; reviewer or admin)
    POST /ui/signin          key + csrf (the pre-session cookie's value) -> session cookie, 303 to `next`
    POST /ui/signout         csrf -> session deleted, cookie cleared, 303 to sign-in

An agent key is refused with a page saying what a reviewer key is and how to get one; a wrong key
says so. The key itself is used once, to find the caller, and never stored or logged.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from core.errors import GatewayError
from store import console as sc

from .web import (
    COOKIE,
    HEADERS,
    PRE_COOKIE,
    PageError,
    check_csrf,
    current_user,
    db,
    gateway,
    read_form,
    render,
    require_user,
    set_session_cookie,
)

log = logging.getLogger("gateway.console")
router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path inside the console (no open redirect)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/queue"


@router.get("/ui")
@router.get("/ui/")
async def home(request: Request) -> Response:
    user = await current_user(request)
    return RedirectResponse("/ui/queue" if user else "/ui/signin", status_code=303, headers=HEADERS)


def _signin_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    expired = request.query_params.get("expired") == "1"
    response = render(request, "signin.html", status=status, csrf=pre, error=error, expired=expired,
                      next=_safe_next(request.query_params.get("next")), user=None)
    response.set_cookie(PRE_COOKIE, pre, max_age=3600, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.get("/ui/signin")
async def signin_form(request: Request) -> Response:
    return _signin_page(request)


@router.post("/ui/signin")
async def signin(request: Request) -> Response:
    form = await read_form(request)
    pre = request.cookies.get(PRE_COOKIE) or ""
    sent = form.get("csrf", "")
    if not pre or not sent or not hmac.compare_digest(pre.encode(), sent.encode()):
        raise PageError(403, "Refused", "The sign-in form did not carry its CSRF token, so it was refused. "
                        "Open the sign-in page again.", code="csrf_failed")
    key = form.get("key", "").strip()
    gw = gateway(request)
    if not key:
        return _signin_page(request, 400, "Paste your gateway key.")
    try:
        caller = await gw.auth.authenticate(f"Bearer {key}", None)
    except GatewayError:
        return _signin_page(request, 401, "That key is not valid (or was revoked).")
    if not caller.can_review:
        log.info("console sign-in refused for %s (role %s)", caller.name, caller.role)
        return render(request, "error.html", status=403, user=None, title="Not a reviewer key",
                      message=f"The key you used belongs to {caller.name!r}, an {caller.role} key: it can call the "
                      "models but not review their answers. Ask the gateway's operator for a reviewer key "
                      "(llm-gateway keys create NAME --role reviewer).")
    ttl = gw.settings.console.session_ttl_s
    _row, token = await db(request, lambda s: sc.create_session(s, caller.name, caller.role, ttl))
    log.info("console sign-in: %s (%s)", caller.name, caller.role)
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303, headers=HEADERS)
    set_session_cookie(request, response, token, ttl)
    response.delete_cookie(PRE_COOKIE, path="/ui")
    return response


@router.post("/ui/signout")
async def signout(request: Request) -> Response:
    user = await require_user(request)
    form = await read_form(request)
    check_csrf(request, user, form)
    token = request.cookies.get(COOKIE, "")
    await db(request, lambda s: sc.delete_session(s, token))
    response = RedirectResponse("/ui/signin", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path="/")
    return response
