"""What every console page shares: templates, the signed-in user, CSRF, database calls, error pages.

Session cookie `gw_console`: a random token (the `console_sessions` row stores only its sha256),
HttpOnly, SameSite=Strict, Path=/, Secure when the page was served over https, Max-Age the
session's lifetime. Nothing in it is, or derives from, a gateway key.

CSRF: every state-changing request (forms and `fetch`) must carry the session's CSRF token, in a
`csrf` form field or an `x-csrf-token` header; the sign-in form, which has no session yet, carries
the value of a pre-session cookie (`gw_console_pre`, double submit). Pages are served with a
strict Content-Security-Policy (scripts and styles from /ui/static only), `no-store` and
`frame-ancestors 'none'`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Request
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from proxy.routes.review import _sessions
from proxy.services import Gateway
from store import console as sc
from store import queries as q

log = logging.getLogger("gateway.console")
T = TypeVar("T")

COOKIE = "gw_console"
PRE_COOKIE = "gw_console_pre"
HERE = Path(__file__).resolve().parent
DB_TIMEOUT_S = 10.0
MAX_FORM_BYTES = 256 * 1024
HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    csrf: str
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class PageError(Exception):
    """Ends a console request with an HTML page (or JSON, for the page's own fetches)."""

    def __init__(self, status: int, title: str, message: str, *, code: str = "console_error") -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.code = status, title, message, code


class SignInNeeded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _age(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return ""
    seconds = max(0.0, ((now or datetime.now(UTC)) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=jinja2.select_autoescape(["html"]),
                         trim_blocks=True, lstrip_blocks=True)
ENV.filters["age"] = _age
ENV.filters["when"] = _when
ENV.filters["money"] = lambda v: f"${v:,.6f}" if isinstance(v, int | float) else ""
ENV.filters["score"] = lambda v: f"{v:.1f}" if isinstance(v, int | float) else "-"
ENV.globals["quote"] = lambda v: quote(str(v), safe="")


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", getattr(request.state, "console_user", None))
    context.setdefault("path", request.url.path)
    html = ENV.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def db(request: Request, work: Callable[[Session], T]) -> T:
    """`work(session)` in a worker thread; an outage is a 503 page, store errors 4xx pages."""
    sessions = _sessions(request)

    def run() -> T:
        with sessions() as session:
            return work(session)

    try:
        return await asyncio.wait_for(asyncio.to_thread(run), DB_TIMEOUT_S)
    except (sa_exc.DBAPIError, sa_exc.TimeoutError, TimeoutError) as exc:
        log.warning("console database call failed on %s: %s", request.url.path, type(exc).__name__)
        raise PageError(503, "Database unavailable", "The audit database is not answering; try again in a "
                        "moment. Nothing was changed.", code="database_unavailable") from None
    except q.NotFound as exc:
        raise PageError(404, "Not found", str(exc), code="not_found") from None
    except q.InvalidInput as exc:
        raise PageError(400, "Bad request", str(exc), code="invalid_request") from None


async def current_user(request: Request) -> User | None:
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 200:
        return None
    row = await db(request, lambda s: sc.get_session(s, token))
    if row is None:
        return None
    user = User(row.caller, row.role, row.csrf, row.expires_at)
    request.state.console_user = user
    return user


async def require_user(request: Request, *, admin: bool = False) -> User:
    """The signed-in reviewer or admin; else sign-in (SignInNeeded) or a 403 page."""
    user = await current_user(request)
    if user is None:
        had_cookie = bool(request.cookies.get(COOKIE))
        raise SignInNeeded("Your session has expired; sign in again." if had_cookie else "")
    if admin and not user.is_admin:
        raise PageError(403, "Admins only", f"This page needs an admin key; you are signed in as {user.name} "
                        f"({user.role}). Reviewers can use the queue and the insights.", code="permission_denied")
    return user


def check_csrf(request: Request, user: User, form: dict[str, str] | None = None) -> None:
    sent = request.headers.get("x-csrf-token") or (form or {}).get("csrf") or ""
    if not sent or not hmac.compare_digest(sent.encode(), user.csrf.encode()):
        raise PageError(403, "Refused", "This request did not carry the page's CSRF token, so it was refused. "
                        "Reload the page and try again.", code="csrf_failed")


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (bounded), last value of each field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PageError(413, "Too large", "The form was too large.", code="request_too_large")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or request.url.path.startswith("/v1/")


def error_page(request: Request, exc: PageError) -> Response:
    if wants_json(request):
        return JSONResponse({"error": {"message": exc.message, "type": "invalid_request_error"
                                       if exc.status < 500 else "api_error", "param": None, "code": exc.code}},
                            status_code=exc.status, headers=HEADERS)
    return render(request, "error.html", status=exc.status, title=exc.title, message=exc.message)


def signin_redirect(request: Request, exc: SignInNeeded) -> Response:
    if wants_json(request):
        return JSONResponse({"error": {"message": exc.reason or "sign in first", "type": "authentication_error",
                                       "param": None, "code": "session_expired" if exc.reason else "signed_out"}},
                            status_code=401, headers=HEADERS)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/ui/signin?next={quote(target, safe='')}" + ("&expired=1" if exc.reason else "")
    response = RedirectResponse(url, status_code=303, headers=HEADERS)
    if exc.reason:
        response.delete_cookie(COOKIE, path="/")
    return response


def set_session_cookie(request: Request, response: Response, token: str, ttl_s: float) -> None:
    response.set_cookie(COOKIE, token, max_age=int(ttl_s), path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
