"""HTML building blocks. Everything interpolated is escaped unless it is already `Safe` markup: object
names, SQL results and job names are user data."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from urllib.parse import quote, urlencode

PREFIX = "/console"


class Safe(str):
    """Markup built here, from escaped parts: inserted as is."""


def esc(value: object) -> Safe:
    return value if isinstance(value, Safe) else Safe(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object]) -> Safe:
    return Safe("".join(esc(p) for p in parts))


def tag(element: str, content: object = "", /, **attrs: object) -> Safe:
    rendered = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None)
    return Safe(f"<{element}{rendered}>{esc(content)}</{element}>")


def link(text: object, path: str, **query: object) -> Safe:
    return tag("a", text, href=url(path, **query))


def url(path: str, **query: object) -> str:
    tail = f"?{urlencode({k: v for k, v in query.items() if v is not None})}" if query else ""
    return f"{PREFIX}{path}{tail}"


def seg(value: str) -> str:
    """One path segment (a job name, a bucket) quoted for a URL."""
    return quote(value, safe="")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], **attrs: object) -> Safe:
    head = f"<thead><tr>{join(tag('th', h) for h in headers)}</tr></thead>" if headers else ""
    body = join(tag("tr", join(tag("td", c) for c in row)) for row in rows)
    return tag("table", Safe(f"{head}<tbody>{body}</tbody>"), **attrs)


def form(action: str, csrf: str, fields: object, *, method: str = "post", **attrs: object) -> Safe:
    token = Safe(f'<input type="hidden" name="csrf_token" value="{esc(csrf)}">')
    return tag("form", join([token, fields]), method=method, action=action, **attrs)


NAV = (("Training", "/training-jobs"), ("Tuning", "/tuning-jobs"), ("Endpoints", "/endpoints"),
       ("Registry", "/model-packages"), ("Lake", "/lake"), ("Athena", "/athena"), ("Reports", "/reports"))


def page(title: str, body: object, *, who: str | None = None, csrf: str | None = None,
         refresh: int | None = None) -> str:
    nav = join(link(text, path) for text, path in NAV) if who else Safe("")
    logout = (form(url("/logout"), csrf, tag("button", "Log out"), class_="logout")
              if who and csrf else Safe(""))
    meta = Safe(f'<meta http-equiv="refresh" content="{int(refresh)}">') if refresh else Safe("")
    user = tag("span", who, class_="who") if who else Safe("")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{esc(title)} · sagelab'
            f'</title><link rel="stylesheet" href="{url("/static/console.css")}">'
            f'<script src="{url("/static/plot.js")}" defer></script></head><body>'
            f'<header><a class="brand" href="{url("/")}">sagelab</a><nav>{nav}</nav>{user}{logout}</header>'
            f'<main><h1>{esc(title)}</h1>{esc(body)}</main></body></html>')


def error_box(message: object) -> Safe:
    return tag("p", message, class_="error", role="alert")
