"""The FastAPI application: the unified read API under /v1 plus open health probes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI

from connectors.egress import configure_default
from hub import __version__
from hub.api.deps import require_scope
from hub.api.middleware import ObserveRequests
from hub.api.problems import PROBLEM_JSON, install_problem_handlers, problem_responses
from hub.api.routes import (
    changes,
    health,
    inbox,
    insights,
    items,
    metrics,
    people,
    priorities,
    quality,
    roadmap,
    sources,
    subscriptions,
    sync,
    webhooks,
)
from hub.config import HubConfig, load_config
from hub.outbound.service import build_deliverer, egress_policy
from hub.runtime import HubRuntime
from hub.settings import Role, Settings, get_settings
from hub.store import Store
from hub.store.keys import Scope
from hub.sync import freeze_startup_objects
from hub.webhooks import ConnectorFactory, default_connector

DESCRIPTION = """\
One API over every product tool's work items, in the OpsHub shared schema v1.

Every `/v1` route needs `Authorization: Bearer <key>` (a key with scope `read` or `admin`).
Errors are RFC 9457 `application/problem+json`.
"""


def create_app(
    store: Store | None = None,
    settings: Settings | None = None,
    *,
    config: HubConfig | None = None,
    connector_factory: ConnectorFactory = default_connector,
    role: Role | None = None,
) -> FastAPI:
    """Build the API app.

    `role` (default: `settings.role`) says what this process does: `api` serves every route
    and runs nothing in the background; `worker` runs the schedules, the inbox worker and the outbound deliverer and
    serves only the health probes and /metrics (its own counters: syncs, deliveries, tool
    requests); `all` does both (background work as `settings.background_tasks` says).

    With no `store`, the app opens one from `settings.database_url` at startup (migrating
    when `settings.migrate_on_start`) and closes it at shutdown; a store passed in stays
    the caller's to close. With no `config`, sources are read from `settings.config` (or
    ./opshub.toml); a bad file raises ConfigError here, before anything starts.
    """
    settings = settings or get_settings()
    configure_default(egress_policy(settings))  # where connectors may connect (connectors/egress.py)
    config = config if config is not None else load_config(settings.config)
    role = role or settings.role
    background = role is Role.worker or (role is Role.all and settings.background_tasks)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened: Store | None = None
        if app.state.store is None:
            # Store.open blocks (connects, migrates): keep it off the event loop.
            opened = await to_thread.run_sync(
                partial(
                    Store.open,
                    settings.database_url,
                    migrate_schema=settings.migrate_on_start,
                    sqlite_cache_mib=settings.sqlite_cache_mib,
                    sqlite_mmap_mib=settings.sqlite_mmap_mib,
                )
            )
            app.state.store = opened
        app.state.store.queries.statement_timeout_ms = settings.api_statement_timeout_ms or None
        runtime = HubRuntime(
            app.state.store,
            config,
            background=background,
            inbox_poll_seconds=settings.inbox_poll_seconds,
            schedule_poll_seconds=settings.schedule_poll_seconds,
            connector_factory=connector_factory,
            inbox_backoff_max_seconds=settings.inbox_backoff_max_seconds,
            inbox_claim_seconds=settings.inbox_claim_seconds,
            context_max_age_seconds=settings.context_max_age_seconds,
            deliverer=build_deliverer(app.state.store, settings),
            outbound_poll_seconds=settings.outbound_poll_seconds,
            inbox_batch_size=settings.inbox_batch_size,
            inbox_pipeline=settings.inbox_pipeline,
        )
        runtime.intake.max_body_bytes = settings.webhook_max_bytes
        runtime.intake.committer.max_group = settings.webhook_group_max
        await runtime.start()
        app.state.runtime = runtime
        # What is alive now lives as long as the app (modules, pydantic and SQLAlchemy
        # metadata, the routes): frozen, the collector's full passes stop walking these
        # ~150,000 objects whenever a request allocates enough to trigger one (60-80 ms of
        # CPU of a 100,000-item flow page). Once per process, as the first sync run does it
        # (hub/sync.py freeze_startup_objects): this way a hub that only serves pages,
        # `role=api`, gets it too. https://docs.python.org/3/library/gc.html#gc.freeze
        freeze_startup_objects()
        try:
            yield
        finally:
            app.state.runtime = None
            await runtime.stop()
            if opened is not None:
                app.state.store = None
                opened.close()

    # docs_url/redoc_url None: hub/web serves /docs and /redoc with vendored assets (no CDN).
    app = FastAPI(
        title="OpsHub",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.config = config
    app.state.runtime = None
    app.state.role = role
    install_problem_handlers(app)
    if role is not Role.worker:
        _include_api(app)
    app.include_router(health.router, responses=problem_responses(500))
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    if role is not Role.worker:
        # Imported here: hub.web builds on hub.api's dependencies, so a module-level import
        # would make `import hub.web.routes` (tests, tools) circular.
        from hub.web.routes import install_web

        install_web(app)  # the dashboard at / (hub/web), its static files, /docs and /redoc
        # Added before ObserveRequests, so inside it: the intake keeps ids and metrics.
        app.add_middleware(webhooks.WebhookIntakePath)
    app.add_middleware(ObserveRequests)
    app.openapi = _problem_openapi(app.openapi)  # type: ignore[method-assign]
    return app


def _include_api(app: FastAPI) -> None:
    """The /v1 read and admin API and the webhook intake."""

    v1 = APIRouter(
        prefix="/v1",
        dependencies=[Depends(require_scope(Scope.read))],
        responses=problem_responses(401, 403, 500, 503),
    )
    # The webhook intake first: Starlette tries routes in order, and the intake is the hot
    # path (hundreds of POSTs a second); behind /v1's ~60 routes each POST paid their matching.
    app.include_router(webhooks.router, responses=problem_responses(500, 503))
    # roadmap first: its /items/{id}/tree must match before items' /items/{id:path}.
    for module in (
        roadmap,
        items,
        people,
        sources,
        sync,
        changes,
        inbox,
        insights,
        quality,
        priorities,
        subscriptions,
    ):
        v1.include_router(module.router)
    app.include_router(v1)


def _problem_openapi(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap FastAPI's OpenAPI generator so that error responses say what we really send.

    FastAPI files every response model under application/json and documents 422 with its
    own HTTPValidationError body; our errors are all the Problem model as problem+json.
    """
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        schema = generate()  # cached by FastAPI after the first call; rewrite it once
        if not done:
            problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    for status, response in operation.get("responses", {}).items():
                        if status[:1] in ("4", "5"):
                            response["content"] = dict(problem)
            component_schemas = schema.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                component_schemas.pop(unused, None)
            done = True
        return schema

    return openapi
