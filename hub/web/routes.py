"""Dashboard pages at `/`: thin routes over the services the /v1 API routes call.

Each page names the API route whose service it calls, takes the same filters as GET query
parameters (parsed by the same dependencies, so a bad value is the same 422), and renders
them with Jinja2. Sign-in, logout and the sync form are POST forms protected by a session
bound CSRF token and an Origin/Referer check (hub/web/sessions.py explains the sessions).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.api.deps import PageLimit, SettingsDep, StoreDep
from hub.api.models import Roadmap, TreeNode
from hub.api.params import MAX_FILTER_VALUES, ContainerFilter, CursorText, FilterText, UtcDateTime
from hub.api.problems import PROBLEM_JSON, ProblemError
from hub.api.routes.insights import FlowFiltersDep, _check_day, _period
from hub.api.routes.items import ItemQueryDep
from hub.api.routes.quality import MAX_OFFSET
from hub.db.engine import StatementTimeout
from hub.flow.history import OPEN
from hub.flow.metrics import AgeZone
from hub.insights.flow import FlowService
from hub.insights.forecast import ForecastService, ItemNotFound, NotRoadmapItem
from hub.insights.priorities import PriorityRules, PriorityService, Quadrant
from hub.insights.quality import DEFAULT_FINDING_LIMIT, QualityService
from hub.roadmap import ROADMAP_KINDS, RoadmapQuery
from hub.schema import ItemKind, PriorityLevel, StatusCategory
from hub.settings import Settings
from hub.store import InvalidCursor, ItemQuery
from hub.store.inbox import InboxStore
from hub.store.items import utcnow
from hub.store.runs import RunInProgress
from hub.web import charts
from hub.web.sessions import COOKIE_NAME, SIGNIN_COOKIE_NAME, SIGNIN_NONCE_SECONDS, WebSession, WebSessionStore

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
VENDOR = "/static/vendor"
DASHBOARD_TAG = "dashboard"
"""Tag of every dashboard route: its errors are HTML pages, every other route's stay problems."""
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["progress_bar"] = charts.progress_bar

NAV = (
    ("overview", "/", "Overview"),
    ("roadmap", "/roadmap", "Roadmap"),
    ("priorities", "/priorities", "Priorities"),
    ("flow", "/flow", "Flow"),
    ("quality", "/quality", "Data quality"),
    ("items", "/items", "Items"),
)
OPEN_CATEGORIES = sorted(c.value for c in OPEN)
UNSCORED_SCAN = 200
"""Open roadmap items the Priorities page checks for missing RICE inputs (newest first)."""


class SignInRequired(Exception):
    """A page was asked for without a live session: answered with a 303 to /signin."""


class PageError(Exception):
    """A page answers with an HTML error page (403, 404, 409, 503 ...)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def web_sessions(request: Request, store: StoreDep, settings: SettingsDep) -> WebSessionStore:
    found: WebSessionStore | None = getattr(request.app.state, "web_sessions", None)
    if found is None or found.engine is not store.engine:
        secret = settings.web_secret.get_secret_value() if settings.web_secret else None
        found = WebSessionStore(store.engine, secret)
        request.app.state.web_sessions = found
    return found


SessionsDep = Annotated[WebSessionStore, Depends(web_sessions)]


def current_session(request: Request, sessions: SessionsDep) -> WebSession:
    session = sessions.resolve(request.cookies.get(COOKIE_NAME))
    if session is None:
        raise SignInRequired()
    return session


SessionDep = Annotated[WebSession, Depends(current_session)]


def _same_origin(request: Request) -> bool:
    """A POST must come from our own pages: Origin (or, without it, Referer) names this host.
    Browsers send Origin on every cross-site POST; a request with neither header is not a
    browser's cross-site request and still needs the CSRF token."""
    own = urlsplit(str(request.base_url))
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed is None:
        return True
    if claimed == "null":
        return False
    seen = urlsplit(claimed)
    return (seen.scheme, seen.netloc) == (own.scheme, own.netloc)


def _check_post(request: Request, sessions: WebSessionStore, session: WebSession, csrf_token: str | None) -> None:
    if not _same_origin(request):
        raise PageError(403, "Forbidden", "This form was sent from another site (Origin/Referer check).")
    if not sessions.csrf_ok(session, csrf_token):
        raise PageError(
            403, "Forbidden", "The form's CSRF token is missing or belongs to another session: reload the page."
        )


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //) is followed after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def render(request: Request, name: str, session: WebSession | None, status: int = 200, **context: Any) -> HTMLResponse:
    base = {
        "nav": NAV,
        "session": session,
        "csrf_token": session.csrf_token if session else None,
        "applied": [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor",) and v != ""],
        "vendor": VENDOR,
        "page_url": lambda **changes: _page_url(request, **changes),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def _cookie_secure(request: Request, mode: str) -> bool:
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = max((now - when).total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"


def _page_url(request: Request, **changes: str | None) -> str:
    """This page's URL with some query parameters replaced (None removes one)."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    pairs += [(k, v) for k, v in changes.items() if v is not None]
    return request.url.path + (f"?{urlencode(pairs)}" if pairs else "")


def item_url(item_id: str) -> str:
    return "/items/" + quote(item_id, safe=":/@")


def when(value: datetime | date | str | None) -> str:
    """A time as people read it (UTC, to the minute); the store's documents carry ISO strings."""
    if value is None or value == "":
        return "unknown"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


templates.env.filters["item_url"] = item_url
templates.env.filters["when"] = when


router = APIRouter(include_in_schema=False, tags=[DASHBOARD_TAG])


# ---------------------------------------------------------------------------- sign-in


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, sessions: SessionsDep, settings: SettingsDep, next: str | None = None) -> Response:
    if sessions.resolve(request.cookies.get(COOKIE_NAME)) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _signin_form(request, sessions, settings, 200, next, None)


def _signin_form(
    request: Request, sessions: WebSessionStore, settings: Settings, status: int, next: str | None, error: str | None
) -> Response:
    """The sign-in page with a fresh signed double-submit nonce (hub/web/sessions.py explains it)."""
    cookie, nonce = sessions.signin_nonce()
    response = render(request, "signin.html", None, status, next=_safe_next(next), error=error, signin_nonce=nonce)
    response.set_cookie(
        SIGNIN_COOKIE_NAME,
        cookie,
        max_age=SIGNIN_NONCE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request, settings.web_cookie_secure),
        path="/signin",
    )
    return response


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    sessions: SessionsDep,
    api_key: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
    signin_nonce: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Exchange an API key (pasted into the form, never put in a URL) for a session cookie.

    Login CSRF: the form must come from our own sign-in page (Origin/Referer, and the signed
    double-submit nonce of GET /signin), else another site could sign the browser in with its
    own key and read what the victim then files or views."""
    if not _same_origin(request):
        return _signin_form(request, sessions, settings, 403, next, "Sign-in form sent from another site.")
    if not sessions.signin_ok(request.cookies.get(SIGNIN_COOKIE_NAME), signin_nonce):
        return _signin_form(
            request,
            sessions,
            settings,
            403,
            next,
            "The sign-in form expired or was not sent from this site: try again.",
        )
    key = store.keys.verify(api_key.strip()) if api_key.strip() else None
    if key is None:
        return _signin_form(request, sessions, settings, 401, next, "That API key is unknown or revoked.")
    lifetime = timedelta(minutes=settings.web_session_minutes)
    cookie = sessions.create(key, lifetime)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request, settings.web_cookie_secure),
        path="/",
    )
    response.delete_cookie(SIGNIN_COOKIE_NAME, path="/signin", httponly=True, samesite="strict")  # used up
    return response


@router.post("/signout")
def signout(
    request: Request, sessions: SessionsDep, session: SessionDep, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    _check_post(request, sessions, session, csrf_token)
    sessions.end(session)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


# ---------------------------------------------------------------------------- overview


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, store: StoreDep, session: SessionDep, started: str | None = None) -> Response:
    """Sources (as GET /v1/sources and /v1/sources/{name}/runs), inbox backlog, item counts."""
    now = utcnow()
    runtime = getattr(request.app.state, "runtime", None)
    configured = dict(runtime.config.sources) if runtime is not None else dict(request.app.state.config.sources)
    by_source = store.queries.count_by_source_and_status()  # one count for both tables below
    stored = {s["name"]: s for s in store.queries.list_sources(by_source)}
    runs, inbox = store.runs, InboxStore(store.engine)
    rows = []
    for name in sorted(set(stored) | set(configured)):
        source = stored.get(name)
        last = runs.list(name, 1)
        last_run = last[0] if last else None
        backlog = inbox.counts(name)
        last_sync = last_run.finished_at or last_run.started_at if last_run else None
        rows.append(
            {
                "name": name,
                "tool": source["tool"] if source else getattr(configured.get(name), "tool", "?"),
                "status": source["status"] if source else "never synced",
                "status_message": source["status_message"] if source else None,
                "item_count": source["item_count"] if source else 0,
                "configured": name in configured,
                "last_run": last_run,
                "last_sync": last_sync,
                "freshness": _ago(last_sync, now),
                "backlog": sum(n for status, n in backlog.items() if status in ("pending", "processing", "failed")),
                "dead": backlog.get("dead", 0),
            }
        )
    counts = store.queries.count_by_tool_and_status(by_source)
    categories = [c.value for c in StatusCategory]
    return render(
        request,
        "overview.html",
        session,
        page="overview",
        sources=rows,
        counts=counts,
        categories=categories,
        total=sum(sum(by.values()) for by in counts.values()),
        started=started,
    )


@router.post("/sources/{name}/sync", response_class=HTMLResponse)
async def sync_now(
    name: str,
    request: Request,
    sessions: SessionsDep,
    session: SessionDep,
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """The Overview's "Sync now" (admin keys only): what POST /v1/sources/{name}/sync does."""
    _check_post(request, sessions, session, csrf_token)
    if not session.is_admin:
        raise PageError(403, "Forbidden", "Starting a sync needs a session signed in with an admin key.")
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise PageError(503, "Service Unavailable", "The hub runtime is not started.")
    if name not in runtime.config.sources:
        raise PageError(404, "Not Found", f"No source named {name!r} is configured.")
    try:
        summary = await runtime.start_sync(name)
    except RunInProgress as exc:
        raise PageError(409, "Run in progress", str(exc)) from None
    return RedirectResponse(f"/?started={quote(name)}:{quote(summary.run_id)}", status_code=303)


# ---------------------------------------------------------------------------- roadmap


@router.get("/roadmap", response_class=HTMLResponse)
def roadmap_page(
    request: Request,
    store: StoreDep,
    session: SessionDep,
    source: Annotated[list[FilterText] | None, Query(max_length=MAX_FILTER_VALUES)] = None,
    container: ContainerFilter = None,
    release: Annotated[list[FilterText] | None, Query(max_length=MAX_FILTER_VALUES)] = None,
    status_category: Annotated[list[StatusCategory] | None, Query(max_length=MAX_FILTER_VALUES)] = None,
) -> Response:
    """The rollup of GET /v1/roadmap (same service, same filters)."""
    query = RoadmapQuery(
        source=source or [],
        container=container or [],
        release=release or [],
        status_category=[c.value for c in status_category or []],
    )
    found = Roadmap.model_validate(store.roadmap.roadmap(query))
    return render(
        request,
        "roadmap.html",
        session,
        page="roadmap",
        roadmap=found.roadmap,
        uncovered=found.uncovered,
        categories=[c.value for c in StatusCategory],
        filters=query,
    )


# ---------------------------------------------------------------------------- priorities


@router.get("/priorities", response_class=HTMLResponse)
def priorities_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    session: SessionDep,
    filters: ItemQueryDep,
    limit: PageLimit,
    as_of: date | None = None,
) -> Response:
    """RICE ranking (GET /v1/items?sort=-rice_score) and the matrix (GET /v1/insights/priorities)."""
    today = as_of or utcnow().date()
    _check_day("as_of", today)
    service = PriorityService(
        store.engine, PriorityRules.from_settings(settings), statement_timeout_ms=store.queries.statement_timeout_ms
    )
    matrix = service.matrix(filters, as_of=today, limit=limit)
    ranked, _ = store.queries.list_items(filters, sort="-rice_score", limit=limit)
    # A score needs every input (hub.schema.Rice): items missing one have none, so they are
    # listed apart, from the newest open roadmap items matching the filters.
    roadmap_query = replace(
        filters,
        kind=[k for k in filters.kind if k in ROADMAP_KINDS] or list(ROADMAP_KINDS),
        status_category=[c for c in filters.status_category if c in OPEN_CATEGORIES] or OPEN_CATEGORIES,
    )
    recent, _ = store.queries.list_items(roadmap_query, sort="-updated_at", limit=UNSCORED_SCAN)
    unscored = [doc for doc in recent if (doc.get("rice") or {}).get("score") is None]
    return render(
        request,
        "priorities.html",
        session,
        page="priorities",
        matrix=matrix,
        quadrants=[
            (Quadrant.urgent_important, "Urgent and important", "Do first"),
            (Quadrant.important_not_urgent, "Important, not urgent", "Schedule"),
            (Quadrant.urgent_not_important, "Urgent, not important", "Delegate or drop"),
            (Quadrant.neither, "Neither", "Drop or park"),
        ],
        ranking=ranked,
        unscored=unscored,
        unscored_scan=UNSCORED_SCAN,
        form=_item_form(filters),
    )


# ---------------------------------------------------------------------------- flow


_ZONE_NOTES = {zone: zone.replace("_", " ") for zone in AgeZone}
"""An aging bar's note per zone, looked up once per WIP item (thousands at 100,000 items)."""


@router.get("/flow", response_class=HTMLResponse)
def flow_page(
    request: Request,
    store: StoreDep,
    session: SessionDep,
    filters: FlowFiltersDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    as_of: UtcDateTime | None = None,
    forecast: Annotated[FilterText | None, Query(description="A roadmap item to forecast.")] = None,
) -> Response:
    """GET /v1/insights/flow's report as charts, and GET /v1/insights/forecast?item= for one item."""
    now = as_of or utcnow()
    _check_day("as_of", now.date())
    period = _period(start, end, now)
    timeout = store.queries.statement_timeout_ms
    # The scatterplot and aging chart are drawn from `metrics` (plain dataclasses, the same
    # figures the API serialises); `report` carries the rest without a pydantic object per item.
    report, metrics = FlowService(store.engine, statement_timeout_ms=timeout).figures(filters, as_of=now, period=period)
    throughput = charts.bar_chart(
        "throughput",
        "Throughput per ISO week",
        [(w.week, w.count) for w in report.throughput.weeks],
        x_label="ISO week",
        y_label="Items done",
    )
    cycle = report.cycle_time
    scatter = charts.scatter_chart(
        "cycle-time",
        "Cycle time of finished items",
        [(p.done_at, p.days, p.item_id) for p in metrics.cycle_time.points],
        cycle.percentiles.model_dump() if cycle.percentiles else {},
        start=report.period.start,
        end=report.period.end,
        x_label="Completed on",
        y_label="Cycle time (days)",
    )
    aging = charts.hbar_chart(
        "aging-wip",
        "Aging work in progress",
        [
            (w.item_id, w.age_days, _ZONE_NOTES[w.zone] if w.zone else "no zone")
            for w in metrics.wip.items
            if w.age_days is not None
        ],
        x_label="Days in progress",
        value_label="Age (days)",
    )
    cfd = charts.stacked_area_chart(
        "cfd",
        "Cumulative flow (items per status category at each day's end)",
        [(d.day, d.counts) for d in report.cumulative_flow.days],
        x_label="Day",
        y_label="Items",
    )
    roadmap_items, _ = store.queries.list_items(ItemQuery(kind=list(ROADMAP_KINDS)), sort="-updated_at", limit=200)
    prediction, forecast_error = None, None
    if forecast:
        try:
            prediction = ForecastService(store.engine, statement_timeout_ms=timeout).when_done(
                forecast, as_of=now.date()
            )
        except ItemNotFound:
            forecast_error = f"No item with id {forecast!r}."
        except NotRoadmapItem as exc:
            forecast_error = str(exc)
    return render(
        request,
        "flow.html",
        session,
        page="flow",
        report=report,
        charts=[throughput, scatter, aging, cfd],
        filters=filters,
        roadmap_items=roadmap_items,
        forecast=forecast,
        prediction=prediction,
        forecast_error=forecast_error,
        kinds=[k.value for k in ItemKind],
    )


# ---------------------------------------------------------------------------- quality


@router.get("/quality", response_class=HTMLResponse)
def quality_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    session: SessionDep,
    filters: FlowFiltersDep,
    stale_days: Annotated[int | None, Query(ge=1, le=3650)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_FINDING_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """GET /v1/insights/quality's report: scores, vocabulary drift, hygiene findings."""
    report = QualityService(store.engine, statement_timeout_ms=store.queries.statement_timeout_ms).report(
        filters, as_of=utcnow(), stale_days=stale_days or settings.quality_stale_days, limit=limit, offset=offset
    )
    return render(
        request,
        "quality.html",
        session,
        page="quality",
        report=report,
        filters=filters,
        kinds=[k.value for k in ItemKind],
        stale_days=stale_days or settings.quality_stale_days,
    )


# ---------------------------------------------------------------------------- items


def _item_form(query: ItemQuery) -> dict[str, Any]:
    values = asdict(query)
    for key in ("updated_after", "updated_before"):
        values[key] = values[key].isoformat() if values[key] else ""
    return {
        "values": values,
        "kinds": [k.value for k in ItemKind],
        "categories": [c.value for c in StatusCategory],
        "priorities": [p.value for p in PriorityLevel],
    }


@router.get("/items", response_class=HTMLResponse)
def items_page(
    request: Request,
    store: StoreDep,
    session: SessionDep,
    query: ItemQueryDep,
    limit: PageLimit,
    sort: Literal["updated_at", "-updated_at", "rice_score", "-rice_score"] = "-updated_at",
    cursor: CursorText | None = None,
) -> Response:
    """GET /v1/items as a page: every filter as a GET form, one keyset page at a time."""
    docs, next_cursor = store.queries.list_items(query, sort=sort, limit=limit, cursor=cursor)
    return render(
        request,
        "items.html",
        session,
        page="items",
        items=docs,
        next_url=_page_url(request, cursor=next_cursor) if next_cursor else None,
        first_url=_page_url(request, cursor=None) if cursor else None,
        form=_item_form(query),
        sort=sort,
        limit=limit,
    )


@router.get("/items/{item_id:path}", response_class=HTMLResponse)
def item_page(item_id: str, request: Request, store: StoreDep, session: SessionDep) -> Response:
    """GET /v1/items/{id}?include=raw, its /history and its /tree on one page."""
    doc = store.queries.get_item(item_id, include_raw=True)
    if doc is None:
        raise PageError(404, "Not Found", f"No item with id {item_id!r}.")
    history = store.items.history(item_id)
    found = store.roadmap.tree(item_id, depth=5)
    tree = TreeNode.model_validate(found) if found is not None else None
    raw = doc.pop("raw", None)
    return render(request, "item.html", session, page="items", item=doc, history=history, tree=tree, raw=raw)


# ---------------------------------------------------------------------------- docs


def _docs_routes(app: FastAPI) -> None:
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{VENDOR}/swagger-ui-dist/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui-dist/swagger-ui.css",
            swagger_favicon_url=f"{VENDOR}/swagger-ui-dist/favicon-32x32.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{VENDOR}/swagger-ui-dist/favicon-32x32.png",
            with_google_fonts=False,
        )


# ---------------------------------------------------------------------------- wiring


async def _on_sign_in_required(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


async def _on_page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    sessions: WebSessionStore | None = getattr(request.app.state, "web_sessions", None)
    cookie = request.cookies.get(COOKIE_NAME)
    session = await to_thread.run_sync(sessions.resolve, cookie) if sessions and cookie else None
    return render(request, "error.html", session, exc.status, page=None, error=exc)


def _is_page(path: str) -> bool:
    """A dashboard page's path (the middleware below runs before routing has found the route)."""
    return path == "/" or any(path == href or path.startswith(href + "/") for _, href, _ in NAV if href != "/")


class DropEmptyFormFields:
    """ASGI middleware: a GET form sends its empty fields too (`source=&tool=`); on dashboard
    pages an empty field means "no filter", so it is dropped before the filters are parsed.
    API routes keep their strict parsing (an empty value there stays a 422)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string") and _is_page(scope["path"]):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            scope = {**scope, "query_string": urlencode([(k, v) for k, v in pairs if v != ""]).encode("latin-1")}
        await self.app(scope, receive, send)


def _html_for_pages(app: FastAPI, exc_class: type[Exception]) -> None:
    """On dashboard pages, show the problem the API handler would send as an HTML error page
    (same status and detail); API routes keep their problem+json."""
    api_handler = app.exception_handlers[exc_class]

    async def handler(request: Request, exc: Exception) -> Response:
        answer = api_handler(request, exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        route = request.scope.get("route")
        if DASHBOARD_TAG not in getattr(route, "tags", ()) or response.media_type != PROBLEM_JSON:
            return response
        problem = json.loads(bytes(response.body))
        error = PageError(response.status_code, problem.get("title", "Error"), problem.get("detail") or "")
        return await _on_page_error(request, error)

    app.add_exception_handler(exc_class, handler)


def install_web(app: FastAPI) -> None:
    """Add the dashboard, its static files and the offline /docs and /redoc to `app`
    (after install_problem_handlers: pages wrap its handlers)."""
    app.add_middleware(DropEmptyFormFields)
    for exc_class in (RequestValidationError, ProblemError, InvalidCursor, StatementTimeout):
        _html_for_pages(app, exc_class)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(SignInRequired, _on_sign_in_required)
    app.add_exception_handler(PageError, _on_page_error)
    _docs_routes(app)
    app.include_router(router)


__all__ = ["install_web", "templates"]
