"""Typed dependencies of the API routes: the store, the settings, API keys, page limits."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.api.models import ProblemFieldError
from hub.api.problems import ProblemError
from hub.runtime import HubRuntime
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import ApiKey, Scope

# The largest page any deployment serves; the OpenAPI document states it. An operator may
# lower the limit with HUB_PAGE_LIMIT_MAX (checked per request), not raise it past this.
PAGE_LIMIT_CEILING = 500

# Dependencies that do no I/O are `async def`: FastAPI runs those on the event loop instead
# of handing each one to the thread pool, which costs more than the work itself. Those that
# touch the database (key checks) and the routes stay sync and run in the thread pool.


async def get_store(request: Request) -> Store:
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:  # the lifespan has not opened it (app served without its lifespan)
        raise ProblemError(503, detail="the store is not open")
    return store


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_runtime(request: Request) -> HubRuntime:
    runtime: HubRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ProblemError(503, detail="the hub runtime is not started")
    return runtime


StoreDep = Annotated[Store, Depends(get_store)]
RuntimeDep = Annotated[HubRuntime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# auto_error=False: a missing or malformed header must be our 401 problem (with
# WWW-Authenticate), not FastAPI's own error body.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An OpsHub API key, created with `opshub keys create --scope read|admin`.",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@cache  # one callable per scope, so FastAPI verifies the key once per request
def require_scope(scope: Scope) -> Callable[..., ApiKey]:
    """A dependency that returns the request's API key if it is live and allows `scope`."""

    def verified_key(store: StoreDep, credentials: BearerDep) -> ApiKey:
        if credentials is None:
            raise ProblemError(
                401,
                detail="send an API key as `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key = store.keys.verify(credentials.credentials)
        if key is None:
            raise ProblemError(
                401,
                detail="the API key is unknown or revoked",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if not key.scope.allows(scope):
            raise ProblemError(
                403,
                detail=f"this route needs an API key with scope {scope.value!r}; this key has {key.scope.value!r}",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope.value}"'},
            )
        return key

    return verified_key


ReadKey = Annotated[ApiKey, Depends(require_scope(Scope.read))]
AdminKey = Annotated[ApiKey, Depends(require_scope(Scope.admin))]


async def page_limit(
    settings: SettingsDep,
    limit: Annotated[
        int | None,
        Query(ge=1, le=PAGE_LIMIT_CEILING, description="Page size (default 50)."),
    ] = None,
) -> int:
    """The page size asked for, or the configured default; above the configured max is a 422."""
    maximum = min(settings.page_limit_max, PAGE_LIMIT_CEILING)
    if limit is None:
        return min(settings.page_limit_default, maximum)
    if limit > maximum:
        detail = f"Input should be less than or equal to {maximum}"
        raise ProblemError(
            422,
            detail=f"invalid request parameter(s): limit ({detail})",
            errors=[ProblemFieldError.model_validate({"in": "query", "name": "limit", "detail": detail})],
        )
    return limit


PageLimit = Annotated[int, Depends(page_limit)]

__all__ = [
    "AdminKey",
    "PageLimit",
    "ReadKey",
    "SettingsDep",
    "StoreDep",
    "get_settings",
    "get_store",
    "page_limit",
    "require_scope",
]
