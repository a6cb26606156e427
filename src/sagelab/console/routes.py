"""The console's routes: who may see what (a session, a CSRF token on every POST) and how each page's
answer becomes a response. Pages run on worker threads: they call the faces, which touch the database."""

from __future__ import annotations

import hmac
import json
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, Router

from sagelab.console import pages
from sagelab.console.gateway import ConsoleCallFailed, Gateway
from sagelab.console.html import PREFIX, Safe, error_box, esc, page, tag, url
from sagelab.console.session import COOKIE_NAME, Session, SessionSigner
from sagelab.console.static import CSS, PLOT_JS
from sagelab.errors import SagelabError

if TYPE_CHECKING:
    from pathlib import Path

    from sagelab.api.app import SagelabApp

CONSOLE_PREFIX = PREFIX
#: How long a console session lasts before the user logs in again.
SESSION_SECONDS = 8 * 3600
#: Forms are small; anything larger is refused before it is parsed.
MAX_FORM_BYTES = 256 * 1024

Page = Callable[[pages.View], Any]

_STATIC = {"console.css": (CSS, "text/css"), "plot.js": (PLOT_JS, "text/javascript")}


class Console:
    def __init__(self, app: SagelabApp, lookup_secret: Callable[[str], str | None], home: Path):
        self.app = app
        self.lookup_secret = lookup_secret
        self.signer = SessionSigner(home, SESSION_SECONDS)

    # --- sessions -------------------------------------------------------------------------------------
    def session_of(self, request: Request) -> Session | None:
        session = self.signer.verify(request.cookies.get(COOKIE_NAME))
        # A key deleted or made inactive since login ends its sessions too.
        if session is None or self.lookup_secret(session.access_key_id) is None:
            return None
        return session

    async def login_form(self, request: Request) -> Response:
        return self._login_page(request.query_params.get("next", ""))

    def _login_page(self, next_path: str, error: str | None = None, status: int = 200) -> Response:
        fields = (f'<input type="hidden" name="next" value="{esc(next_path)}">'
                  '<label>Access key ID <input name="access_key_id" autocomplete="username" required></label>'
                  '<label>Secret access key <input name="secret_access_key" type="password" '
                  'autocomplete="current-password" required></label><button type="submit">Log in</button>')
        body = (error_box(error) if error else "") + f'<form class="login" method="post" action="{url("/login")}">' \
            f"{fields}</form>"
        return HTMLResponse(page("Log in", Safe(body)), status_code=status, headers=_NO_STORE)

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        if form is None:
            return HTMLResponse("Request body too large", status_code=413)
        key_id = form.get("access_key_id", "").strip()
        given = form.get("secret_access_key", "")
        secret = await anyio.to_thread.run_sync(self.lookup_secret, key_id) if key_id else None
        if secret is None or not hmac.compare_digest(secret.encode(), given.encode()):
            return self._login_page(form.get("next", ""), "The access key ID or secret access key is not valid.",
                                    401)
        session = self.signer.issue(key_id)
        response = RedirectResponse(_local(form.get("next", "")) or url("/"), status_code=303)
        response.set_cookie(COOKIE_NAME, session.cookie, max_age=SESSION_SECONDS, path=PREFIX, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    async def logout(self, request: Request) -> Response:
        session = self.session_of(request)
        form = await _form(request) or {}
        if session is not None and not self.signer.csrf_ok(session, form.get("csrf_token")):
            return _forbidden()
        response = RedirectResponse(url("/login"), status_code=303)
        response.delete_cookie(COOKIE_NAME, path=PREFIX)
        return response

    # --- pages ----------------------------------------------------------------------------------------
    def guarded(self, handler: Page, *, feed: bool = False) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            if session is None:
                if feed:
                    return JSONResponse({"error": "not logged in"}, status_code=401)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(url("/login", next=target), status_code=303)
            form: dict[str, str] = {}
            if request.method == "POST":
                parsed = await _form(request)
                if parsed is None:
                    return HTMLResponse("Request body too large", status_code=413)
                if not self.signer.csrf_ok(session, parsed.get("csrf_token")):
                    return _forbidden()
                form = parsed
            client = request.client.host if request.client else ""
            view = pages.View(gateway=Gateway(self.app, session.access_key_id, client, request.url.scheme == "https"),
                              csrf=self.signer.csrf_token(session), who=session.access_key_id,
                              query=dict(request.query_params), form=form, path_params=dict(request.path_params))
            return await anyio.to_thread.run_sync(self._render, handler, view, feed)
        return endpoint

    @staticmethod
    def _render(handler: Page, view: pages.View, feed: bool) -> Response:
        try:
            answer = handler(view)
        except (SagelabError, ConsoleCallFailed) as refused:
            status = refused.status
            message = (f"{refused.code_for('json')}: {refused.message}" if isinstance(refused, SagelabError)
                       else str(refused))
            if feed:
                return JSONResponse({"error": message}, status_code=status)
            answer = pages.Html("Error", error_box(message), status=status)
        except Exception as exc:  # noqa: BLE001 - a page's bug is a 500 page, and its trace goes to the log
            traceback.print_exc(file=sys.stderr)
            if feed:
                return JSONResponse({"error": f"Internal error: {type(exc).__name__}"}, status_code=500)
            answer = pages.Html("Error", error_box(f"Internal error: {type(exc).__name__}: {exc}"), status=500)
        if isinstance(answer, pages.Redirect):
            return RedirectResponse(answer.location, status_code=303)
        if isinstance(answer, pages.Raw):
            return Response(answer.body, media_type=answer.content_type, headers=answer.headers)
        if isinstance(answer, dict):
            return Response(json.dumps(answer), media_type="application/json", headers=_NO_STORE)
        return HTMLResponse(page(answer.title, answer.body, who=view.who, csrf=view.csrf, refresh=answer.refresh),
                            status_code=answer.status, headers={**_NO_STORE, **_FRAMING})

    async def static(self, request: Request) -> Response:
        found = _STATIC.get(request.path_params["name"])
        if found is None:
            return HTMLResponse("Not found", status_code=404)
        return Response(found[0], media_type=found[1])

    async def home(self, request: Request) -> Response:
        return RedirectResponse(url("/training-jobs"), status_code=303)

    def router(self) -> Router:
        g = self.guarded
        return Router(routes=[
            Route(PREFIX, self.home), Route(f"{PREFIX}/", self.home),
            Route(f"{PREFIX}/login", self.login_form, methods=["GET"]),
            Route(f"{PREFIX}/login", self.login, methods=["POST"]),
            Route(f"{PREFIX}/logout", self.logout, methods=["POST"]),
            Route(f"{PREFIX}/static/{{name}}", self.static),
            Route(f"{PREFIX}/training-jobs", g(pages.training_jobs)),
            Route(f"{PREFIX}/training-jobs/{{name}}", g(pages.training_job)),
            Route(f"{PREFIX}/api/training-jobs/{{name}}", g(pages.training_job_feed, feed=True)),
            Route(f"{PREFIX}/tuning-jobs", g(pages.tuning_jobs)),
            Route(f"{PREFIX}/tuning-jobs/{{name}}", g(pages.tuning_job)),
            Route(f"{PREFIX}/api/tuning-jobs/{{name}}", g(pages.tuning_job_feed, feed=True)),
            Route(f"{PREFIX}/endpoints", g(pages.endpoints)),
            Route(f"{PREFIX}/endpoints/{{name}}", g(pages.endpoint)),
            Route(f"{PREFIX}/api/endpoints/{{name}}", g(pages.endpoint_feed, feed=True)),
            Route(f"{PREFIX}/model-packages", g(pages.model_packages)),
            Route(f"{PREFIX}/model-package", g(pages.model_package)),
            Route(f"{PREFIX}/model-packages/approval", g(pages.set_approval), methods=["POST"]),
            Route(f"{PREFIX}/reports", g(pages.reports)),
            Route(f"{PREFIX}/lake", g(pages.buckets)),
            Route(f"{PREFIX}/lake/{{bucket}}", g(pages.bucket)),
            Route(f"{PREFIX}/lake/{{bucket}}/object", g(pages.lake_object)),
            Route(f"{PREFIX}/lake/{{bucket}}/raw", g(pages.lake_raw)),
            Route(f"{PREFIX}/athena", g(pages.athena_editor), methods=["GET"]),
            Route(f"{PREFIX}/athena", g(pages.athena_submit), methods=["POST"]),
            Route(f"{PREFIX}/athena/{{query_id}}", g(pages.athena_query)),
        ])


_NO_STORE = {"cache-control": "no-store"}
#: The console's own pages are never framed elsewhere (clickjacking of the Approve button).
_FRAMING = {"x-frame-options": "DENY", "content-security-policy": "frame-ancestors 'none'",
            "x-content-type-options": "nosniff"}


def _forbidden() -> Response:
    return HTMLResponse(str(tag("p", "The form's CSRF token is missing or does not match this session.")),
                        status_code=403)


def _local(path: str) -> str | None:
    """Only a console path is a place to return to after login (no open redirect)."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith(PREFIX + "/") or path.startswith("//"):
        return None
    return path


async def _form(request: Request) -> dict[str, str] | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def console_app(app: SagelabApp, *, lookup_secret: Callable[[str], str | None], home: Path) -> Router:
    """The ASGI app for `/console/...`, acting through `app`'s faces, guards and observers. `lookup_secret`
    is what SigV4 checks keys with; the session key is kept in `home`."""
    return Console(app, lookup_secret, home).router()
