"""The stewards' web UI at /ui: the review queue, side-by-side comparison, persons, search.

Server-rendered with Jinja2 (autoescaped), plain forms and a little CSS; nothing is loaded
from another host. Every action calls the same services as the API, so it is audited and
published the same way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.ui.session import COOKIE, LIFETIME_SECONDS, Session, csrf_ok, issue, read
from mdm.model.errors import (
    InvalidRecord,
    MdmError,
    PersonErased,
    PersonNotFound,
    ReviewNotFound,
    StaleDecision,
)
from mdm.model.redaction import redact, redact_explanation, redact_lineage
from mdm.services.context import Registry
from mdm.services.keys import authenticate
from mdm.services.persons import PersonView, get_person, person_history, search_persons
from mdm.services.reviews import ReviewFilter, list_reviews
from mdm.services.stewardship import resolve_review, review_detail, split_record

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)


class LoginRequired(Exception):
    pass


class BadForm(Exception):
    pass


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def _session(request: Request) -> Session:
    secret = _registry(request).settings.admin_key
    session = read(request.cookies.get(COOKIE), secret)
    if session is None:
        raise LoginRequired()
    return session


async def _form(request: Request, session: Session) -> dict[str, str]:
    """The posted form, once its CSRF token is checked."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not csrf_ok(session, fields.get("csrf")):
        raise BadForm()
    return fields


def _page(request: Request, name: str, session: Session | None, **context: Any) -> Response:
    return templates.TemplateResponse(
        request, name, {"session": session, "now": datetime.now(UTC), **context}
    )


@router.get("/static/ui.css")
async def stylesheet() -> Response:
    return Response((HERE / "static" / "ui.css").read_text(), media_type="text/css")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, failed: bool = False) -> Response:
    return _page(request, "login.html", None, failed=failed)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    key = form.get("key")
    registry = _registry(request)
    principal = authenticate(registry, key) if isinstance(key, str) and key else None
    secret = registry.settings.admin_key
    # The pages are the stewards': a key without reviews:resolve does not sign in.
    if principal is None or not principal.holds("reviews:resolve") or not secret:
        return RedirectResponse("/ui/login?failed=true", status_code=303)
    cookie, _ = issue(principal.name, secret, scopes=principal.scopes)
    response = RedirectResponse("/ui/reviews", status_code=303)
    response.set_cookie(
        COOKIE, cookie, max_age=LIFETIME_SECONDS, httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/ui",
    )  # fmt: skip
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = _session(request)
    await _form(request, session)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("", response_class=HTMLResponse)
async def home() -> Response:
    return RedirectResponse("/ui/reviews", status_code=303)


@router.get("/reviews", response_class=HTMLResponse)
async def queue(
    request: Request,
    sort: str = "age",
    source: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    cursor: str | None = None,
    done: str | None = None,
) -> Response:
    session = _session(request)
    if sort not in ("age", "-age", "score", "-score"):
        sort = "age"
    filters = ReviewFilter(
        status="open", source=source or None, min_score=min_score, max_score=max_score
    )
    page = list_reviews(_registry(request), filters, sort=sort, cursor=cursor, limit=50)  # type: ignore[arg-type]
    return _page(
        request, "queue.html", session, page=page, sort=sort, source=source or "",
        min_score=min_score, max_score=max_score, done=done,
    )  # fmt: skip


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
async def compare(request: Request, review_id: UUID, stale: bool = False) -> Response:
    session = _session(request)
    found = review_detail(_registry(request), review_id)
    detail = replace(
        found,
        item=replace(
            found.item, explanation=redact_explanation(found.item.explanation, session.scopes)
        ),
        person_a=_visible(found.person_a, session.scopes),
        person_b=_visible(found.person_b, session.scopes),
    )
    a, b = detail.person_a.attributes, detail.person_b.attributes
    fields = [k for k in _FIELD_ORDER if k in a or k in b] + sorted(
        k for k in a.keys() | b.keys() if k not in _FIELD_ORDER
    )
    rows = [(f, a.get(f), b.get(f), a.get(f) != b.get(f)) for f in fields]
    return _page(request, "compare.html", session, detail=detail, rows=rows, stale=stale)


@router.post("/reviews/{review_id}/resolve")
async def resolve(request: Request, review_id: UUID) -> Response:
    session = _session(request)
    form = await _form(request, session)
    decision = form.get("decision")
    if decision not in ("merge", "distinct", "keep", "replace"):
        raise BadForm()
    try:
        versions = (int(form["person_a_version"]), int(form["person_b_version"]))
    except (KeyError, ValueError):
        raise BadForm() from None
    try:
        resolve_review(
            _registry(request), review_id, decision, actor=f"{session.actor} (ui)",  # type: ignore[arg-type]
            note=form.get("note") or None, versions=versions,
        )  # fmt: skip
    except StaleDecision:
        return RedirectResponse(f"/ui/reviews/{review_id}?stale=true", status_code=303)
    said = {
        "merge": "merged",
        "distinct": "marked as not a match",
        "keep": "golden value kept",
        "replace": "other value taken",
    }[decision]
    return RedirectResponse(f"/ui/reviews?done={said}", status_code=303)


def _visible(view: PersonView, scopes: frozenset[str]) -> PersonView:
    """The person as the signed-in steward's key may see it."""
    return replace(
        view,
        attributes=redact(view.attributes, scopes),
        lineage=redact_lineage(view.lineage, scopes),
    )


@router.get("/persons/{person_id}", response_class=HTMLResponse)
async def person(request: Request, person_id: UUID, done: str | None = None) -> Response:
    session = _session(request)
    registry = _registry(request)
    view = _visible(get_person(registry, person_id), session.scopes)
    history, _ = person_history(registry, view.id, limit=200)
    return _page(
        request, "person.html", session, person=view, history=list(reversed(history)), done=done
    )


@router.post("/records/{source}/{source_id}/split")
async def split(request: Request, source: str, source_id: str) -> Response:
    session = _session(request)
    form = await _form(request, session)
    result = split_record(
        _registry(request), source, source_id, actor=f"{session.actor} (ui)",
        note=form.get("note") or None,
    )  # fmt: skip
    return RedirectResponse(
        f"/ui/persons/{result.from_person_id}?done=split+{source}/{source_id}", status_code=303
    )


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request, q: str = "") -> Response:
    session = _session(request)
    query = q.strip()
    results, error = [], None
    if query:
        kind = (
            "email"
            if "@" in query
            else "phone"
            if query.lstrip("+").replace(" ", "").isdigit()
            else "name"
        )
        try:
            found = search_persons(_registry(request), **{kind: query}, limit=50)  # type: ignore[arg-type]
            results = [_visible(v, session.scopes) for v in found]
        except InvalidRecord as exc:
            error = "; ".join(e.message for e in exc.errors) or exc.detail
    return _page(request, "search.html", session, q=query, results=results, error=error)


_FIELD_ORDER = (
    "given_name", "middle_name", "family_name", "emails", "phones", "birth_date", "national_id",
    "employee_id", "hire_date", "department", "cost_center", "job_title", "status", "country",
)  # fmt: skip


def install(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/ui/login", status_code=303)

    @app.exception_handler(BadForm)
    async def _bad_form(request: Request, exc: BadForm) -> Response:
        return PlainTextResponse(
            "The form is not valid or has expired; reload the page and try again.", 403
        )

    # Errors on UI pages are pages, not problem documents.
    previous = app.exception_handlers.get(MdmError)

    @app.exception_handler(MdmError)
    async def _error(request: Request, exc: MdmError) -> Response:
        if request.url.path.startswith("/ui/"):
            status = (
                404
                if isinstance(exc, PersonNotFound | ReviewNotFound)
                else (410 if isinstance(exc, PersonErased) else 422)
            )
            session = read(request.cookies.get(COOKIE), _registry(request).settings.admin_key)
            return templates.TemplateResponse(
                request, "error.html", {"session": session, "error": exc}, status_code=status
            )
        assert previous is not None
        return await previous(request, exc)  # type: ignore[misc]
