"""The reviewer console: server-rendered pages at /ui, served by the gateway itself (docs/reviewing.md).

`install(app)` adds the routes (sign-in, queue, item, insights, audit explorer), the static files
(/ui/static: one stylesheet and two small scripts, shipped in the package: no CDN, no build step)
and the handlers that turn console errors into pages. Modules: `web` (templates, sessions, CSRF,
database calls), `auth_pages`, `review_pages`, `insights_pages`, `audit_pages`, `views`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from . import audit_pages, auth_pages, insights_pages, review_pages
from .web import HERE, PageError, SignInNeeded, error_page, signin_redirect


def install(app: FastAPI) -> None:
    for module in (auth_pages, review_pages, insights_pages, audit_pages):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return error_page(request, exc)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        return signin_redirect(request, exc)
