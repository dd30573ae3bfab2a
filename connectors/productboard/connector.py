"""Productboard: features and subfeatures from the Public REST API v1, thin webhook notifications.

API reference (every request carries `X-Version: 1` and `Authorization: Bearer <token>`):
- features:       https://developer.productboard.com/reference/getfeatures
- one feature:    https://developer.productboard.com/reference/getfeature
- components:     https://developer.productboard.com/reference/getcomponents
- products:       https://developer.productboard.com/reference/getproducts
- statuses:       https://developer.productboard.com/reference/getfeaturestatuses
- releases:       https://developer.productboard.com/reference/listreleases
- assignments:    https://developer.productboard.com/reference/listfeaturereleaseassignments
- custom fields:  https://developer.productboard.com/reference/getcustomfields
- field values:   https://developer.productboard.com/reference/getcustomfieldsvalues
- Jira links:     https://developer.productboard.com/reference/getjiraintegrationconnections
- webhooks:       https://developer.productboard.com/reference/postwebhook (probe + notification callbacks)
- rate limits:    429 with `Retry-After` (seconds), honoured by SourceClient.

Incremental strategy. `GET /features` has no "updated since" filter and no sort order (the
published filters are status, parent, archived, owner and note). So every run lists all
features (100 per page, the maximum: 1,000 features cost 10 requests) and keeps those whose
`updatedAt` is at or after the cursor minus `overlap`; the kept ones are sorted by
`(updatedAt, id)` and yielded in pages of `page_size`, so the contract's ascending order and
resumable per-page cursors hold. A run that finds nothing new reads no auxiliary listing, and
one that keeps fewer features than the listing had pages reads their assignments, values and
Jira connections per feature instead of listing the whole account's.
The store writes only newer versions, so the overlap re-read is harmless.

Enrichment. The record the mapping sees is the feature exactly as the API returns it plus an
`_opshub` object the connector joins from auxiliary listings read once per run (shape in
mappings/productboard.yaml). Known gap: assigning a release or editing a custom-field value
may leave the feature's `updatedAt` alone (the API documents no such rule); upsert-if-newer
then keeps the stored version until the feature itself changes.

Webhooks. Productboard signs nothing: a subscription may carry one `Authorization` header
value (`notification.headers.authorization`) that every probe and notification repeats.
`verify` compares it with `webhook_secret` in constant time; it proves the sender knows the
secret but does not bind the body (say so to whoever exposes the endpoint: use TLS, and treat
notifications as hints). That is why notifications are thin here: every event only triggers
a refetch of the feature from the API (or a tombstone for `feature.deleted`), so a forged body
can at worst cause a read.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Unpack
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson

from connectors.auth import BearerAuth, header_value
from connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorError,
    ConnectorOptions,
    DeleteRecord,
    IgnoreEvent,
    Page,
    RefetchRecord,
    WebhookDelivery,
    WebhookEvent,
    WebhookRejected,
    body_digest,
    compact_json,
    parse_duration,
)
from connectors.cursors import DatetimeCursor, parse_time
from connectors.paging import PageTokenPaginator
from connectors.productboard.config import ProductboardConfig

FEATURES = "/features"
FEATURE = "/features/{}"
COMPONENTS = "/components"
PRODUCTS = "/products"
STATUSES = "/feature-statuses"
RELEASES = "/releases"
ASSIGNMENTS = "/feature-release-assignments"
CUSTOM_FIELDS = "/hierarchy-entities/custom-fields"
CUSTOM_VALUES = "/hierarchy-entities/custom-fields-values"
JIRA_INTEGRATIONS = "/jira-integrations"
JIRA_CONNECTIONS = "/jira-integrations/{}/connections"
JIRA_CONNECTION = "/jira-integrations/{}/connections/{}"

API_VERSION = "1"
MAX_PAGE = 100

# Events about a feature whose id is in `data.id` / the target link's last path segment.
FEATURE_EVENTS = frozenset({"feature.created", "feature.updated"})
# Events with no `id`, only a target link whose query names the feature.
LINKED_EVENTS = {
    "feature-release-assignment.updated": "feature.id",
    "hierarchy-entity.custom-field-value.updated": "hierarchyEntity.id",
}


@dataclass
class Auxiliary:
    """What a run joins onto features: read once per run (fetch) or per `aux_ttl` (fetch_one)."""

    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    jira_integrations: list[str] = field(default_factory=list)
    features: dict[str, dict[str, Any]] = field(default_factory=dict)  # parents of subfeatures
    # per feature (or entity) id
    assignments: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    jira: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class ProductboardConnector(Connector):
    tool: ClassVar[str] = "productboard"
    config_model: ClassVar[type[ConnectorConfig]] = ProductboardConfig
    supports_webhooks: ClassVar[bool] = True
    # Never stored with a delivery: the subscription's notification.headers.authorization
    webhook_secret_headers: ClassVar[frozenset[str]] = frozenset({"authorization"})

    config: ProductboardConfig

    def __init__(self, name: str, config: ConnectorConfig, **options: Unpack[ConnectorOptions]) -> None:
        super().__init__(name, config, **options)
        config = self.config
        self.http = self.source_client(
            auth=BearerAuth(config.token.get_secret_value()),
            headers={"X-Version": API_VERSION},
            auth_hint=(
                f"sources.{name}.token: a Productboard Public API access token "
                f"(Settings > Integrations > Public API) or an OAuth2 token with read scopes"
            ),
        )
        self.aux_ttl = parse_duration(config.aux_ttl).total_seconds()
        self.dedupe_window = max(1.0, parse_duration(config.webhook_dedupe_window).total_seconds())
        self._origin = urlsplit(config.base_url)
        self._shared: Auxiliary | None = None
        self._shared_at = 0.0

    # -------------------------------------------------------- listing helpers

    def _same_origin(self, url: str) -> str:
        """`links.next` as a URL on the configured base. The API builds absolute links (its own
        examples show other hosts, e.g. api.productboard.info); the bearer token goes to the
        configured host only, so the link's path and query are kept and its host is not."""
        parts = urlsplit(url)
        if not parts.scheme:
            return url
        base_path = self._origin.path.rstrip("/")
        path = parts.path if parts.path.startswith(base_path + "/") or not base_path else base_path + parts.path
        return urlunsplit((self._origin.scheme, self._origin.netloc, path, parts.query, ""))

    async def _pages(self, path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of a listing, following `links.next` (absolute URLs) until it is null.

        PageTokenPaginator reads the body path `links.next` and refuses a link it has seen, so a
        server handing back the same cursor stops the run instead of looping it.
        """
        paginator = PageTokenPaginator(token_path=("links", "next"), last_path=None)
        target, query = path, dict(params or {})
        while paginator.has_more:
            data, response = await self.http.get_json(target, query or None)
            items = data.get("data") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise ConnectorError(f"{self.name}: GET {path} answered without a 'data' list")
            yield [item for item in items if isinstance(item, dict)]
            token = paginator.advance(response, data)
            if token is not None:
                target, query = self._same_origin(token), {}

    async def _all(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return [item async for page in self._pages(path, params) for item in page]

    def _feature_params(self) -> dict[str, Any]:
        # `pageLimit` is not in the OpenAPI description of GET /features (100 is its default
        # page); it is sent only when a smaller page is configured.
        params: dict[str, Any] = {}
        if self.config.page_size < MAX_PAGE:
            params["pageLimit"] = self.config.page_size
        if not self.config.include_archived:
            params["archived"] = "false"
        return params

    # -------------------------------------------------------- auxiliary listings

    async def _load_shared(self, aux: Auxiliary) -> None:
        """Statuses, hierarchy, releases, custom field definitions and Jira integrations."""
        aux.statuses = _by_id(await self._all(STATUSES))
        aux.components = _by_id(await self._all(COMPONENTS))
        aux.products = _by_id(await self._all(PRODUCTS))
        if self.config.releases:
            aux.releases = _by_id(await self._all(RELEASES))
        if self.config.custom_fields and self.config.custom_field_types:
            aux.custom_fields = _by_id(
                await self._all(CUSTOM_FIELDS, {"type": ",".join(self.config.custom_field_types)})
            )
        if self.config.jira_links:
            if self.config.jira_integration_ids:
                aux.jira_integrations = list(self.config.jira_integration_ids)
            else:
                aux.jira_integrations = [str(i["id"]) for i in await self._all(JIRA_INTEGRATIONS) if i.get("id")]

    async def load_auxiliary(self) -> Auxiliary:
        """Everything the enrichment joins, for a whole run: one listing per kind, paged."""
        aux = Auxiliary()
        await self._load_shared(aux)
        # Page by page: the whole account's rows are never held at once, only what is joined.
        if self.config.releases:
            async for rows in self._pages(ASSIGNMENTS):
                _add_assignments(aux, rows)
        if aux.custom_fields:
            async for rows in self._pages(CUSTOM_VALUES, {"type": ",".join(self.config.custom_field_types)}):
                _add_values(aux, rows)
        for integration in aux.jira_integrations:
            async for rows in self._pages(JIRA_CONNECTIONS.format(integration)):
                _add_jira(aux, integration, rows)
        self._shared, self._shared_at = aux, self.clock()
        return aux

    async def _auxiliary_for(self, feature_ids: list[str], *, fresh: bool = False) -> Auxiliary:
        """For a few features (a webhook refetch, or a run that kept a few): their own
        assignments, custom-field values and Jira connections read per feature; the shared
        parts cached for `aux_ttl` unless `fresh` (a sync run reads them once, fresh)."""
        if fresh or self._shared is None or self.clock() - self._shared_at > self.aux_ttl:
            shared = Auxiliary()
            await self._load_shared(shared)
            self._shared, self._shared_at = shared, self.clock()
        base = self._shared
        aux = Auxiliary(
            statuses=base.statuses,
            components=base.components,
            products=base.products,
            releases=base.releases,
            custom_fields=base.custom_fields,
            jira_integrations=base.jira_integrations,
        )
        for feature_id in feature_ids:
            if self.config.releases:
                _add_assignments(aux, await self._all(ASSIGNMENTS, {"feature.id": feature_id}))
            if aux.custom_fields:
                params = {"type": ",".join(self.config.custom_field_types), "hierarchyEntity.id": feature_id}
                _add_values(aux, await self._all(CUSTOM_VALUES, params))
            for integration in aux.jira_integrations:
                data, _ = await self.http.get_json(JIRA_CONNECTION.format(integration, feature_id), allow_404=True)
                one = data.get("data") if isinstance(data, dict) else None
                _add_jira(aux, integration, [one] if isinstance(one, dict) else [])
        return aux

    async def _parent_feature(self, feature: dict[str, Any], aux: Auxiliary) -> None:
        """A subfeature's parent feature (for its name and the container above it)."""
        kind, pid = _parent_ref(feature.get("parent"))
        if kind == "feature" and pid is not None:
            data, _ = await self.http.get_json(FEATURE.format(pid), allow_404=True)
            parent = data.get("data") if isinstance(data, dict) else None
            if isinstance(parent, dict):
                aux.features[pid] = parent

    # -------------------------------------------------------- enrichment

    def enrich(self, feature: dict[str, Any], aux: Auxiliary) -> dict[str, Any]:
        """The feature plus `_opshub` (see mappings/productboard.yaml for the shape)."""
        fid = str(feature["id"])
        status_ref: dict[str, Any] = _obj(feature.get("status"))
        status = aux.statuses.get(str(status_ref.get("id")), {})
        chain = self._ancestry(feature, aux)
        parent = chain[-1] if chain else None
        products = [c for c in chain if c["type"] == "product"]
        components = [c for c in chain if c["type"] == "component"]
        container = products[0] if products else (components[0] if components else None)
        releases = [self._release(aux.releases.get(rid), rid) for rid in aux.assignments.get(fid, [])]
        values = []
        for value in aux.values.get(fid, []):
            definition = aux.custom_fields.get(str((value.get("customField") or {}).get("id")), {})
            values.append(
                {
                    "id": str((value.get("customField") or {}).get("id")),
                    "name": definition.get("name"),
                    "type": value.get("type") or definition.get("type"),
                    "value": _plain_value(value.get("value")),
                }
            )
        jira = []
        for connection in aux.jira.get(fid, []):
            key = connection.get("issueKey")
            url = f"{self.config.jira_base_url}/browse/{key}" if key and self.config.jira_base_url else None
            jira.append({**connection, "url": url})
        return {
            **feature,
            "_opshub": {
                "status": {
                    "id": status_ref.get("id"),
                    "name": status.get("name", status_ref.get("name")),
                    "completed": status.get("completed"),
                },
                "parent": parent,
                "hierarchy": chain,
                "container": container,
                "component": components[-1] if components else None,
                "releases": releases,
                "release": _pick_release(releases),
                "custom_fields": values,
                "jira": jira,
            },
        }

    def _ancestry(self, feature: dict[str, Any], aux: Auxiliary) -> list[dict[str, Any]]:
        """The chain from the top (a product) down to the feature's immediate parent."""
        chain: list[dict[str, Any]] = []
        node: dict[str, Any] | None = feature
        seen: set[str] = set()
        while node is not None:
            kind, pid = _parent_ref(node.get("parent"))
            if kind is None or pid is None or pid in seen:
                break
            seen.add(pid)
            table = {"feature": aux.features, "component": aux.components, "product": aux.products}[kind]
            found = table.get(pid)
            chain.append({"type": kind, "id": pid, "name": found.get("name") if found else None})
            node = found
        chain.reverse()
        return chain

    @staticmethod
    def _release(release: dict[str, Any] | None, rid: str) -> dict[str, Any]:
        release = release or {}
        timeframe = _obj(release.get("timeframe"))
        return {
            "id": rid,
            "name": release.get("name"),
            "state": release.get("state"),
            "archived": release.get("archived"),
            "startDate": _date_or_none(timeframe.get("startDate")),
            "endDate": _date_or_none(timeframe.get("endDate")),
        }

    # -------------------------------------------------------- pull

    async def fetch(self, cursor: str | None) -> AsyncIterator[Page]:
        """All features listed, those updated since the cursor (minus overlap) enriched and
        yielded in `(updatedAt, id)` order, `page_size` per page.

        A full sync keeps every feature until all are listed and sorted: they are kept as
        exact-size JSON bytes (about a fifth of decoded dicts) and decoded a page at a time;
        for the parent chain only each feature's name and parent are kept."""
        state = DatetimeCursor.parse(cursor)
        since = state.since(self.overlap)
        keyed: list[tuple[datetime, str, bytes]] = []
        undated: list[tuple[str, bytes]] = []
        parents: dict[str, dict[str, Any]] = {}
        async for page in self._pages(FEATURES, self._feature_params()):
            for feature in page:
                if not feature.get("id"):
                    raise ConnectorError(f"{self.name}: GET {FEATURES} returned a feature without an id")
                fid = str(feature["id"])
                parents[fid] = {"name": feature.get("name"), "parent": feature.get("parent")}
                updated = _updated(feature)
                if updated is None:
                    # Unreadable updatedAt: only a full sync passes it on (the mapping reports it).
                    if since is None:
                        undated.append((fid, compact_json(feature)))
                    continue
                if since is None or updated >= since:
                    keyed.append((updated, fid, compact_json(feature)))
        keyed.sort(key=lambda entry: (entry[0], entry[1]))
        if not keyed and not undated:
            yield Page(records=[], cursor=cursor)
            return
        ordered = undated + [(fid, encoded) for _, fid, encoded in keyed]
        del keyed, undated
        # The whole-account listings of assignments, values and Jira connections cost about
        # as many pages as the features listing (often more); for a few changed features
        # (an incremental run, the overlap's re-reads) asking per feature is far cheaper.
        feature_pages = len(parents) // min(self.config.page_size, MAX_PAGE)
        if len(ordered) <= feature_pages:
            aux = await self._auxiliary_for([fid for fid, _ in ordered], fresh=True)
        else:
            aux = await self.load_auxiliary()
        aux.features = parents
        size = self.config.page_size
        for start in range(0, len(ordered), size):
            chunk = [orjson.loads(encoded) for _, encoded in ordered[start : start + size]]
            for feature in chunk:
                updated = _updated(feature)
                if updated is not None:
                    state.observe(updated, str(feature["id"]))
            yield Page(records=[self.enrich(f, aux) for f in chunk], cursor=state.serialize() or cursor)

    async def fetch_one(self, native_id: str) -> dict[str, Any] | None:
        data, _ = await self.http.get_json(FEATURE.format(native_id), allow_404=True)
        feature = data.get("data") if isinstance(data, dict) else None
        if not isinstance(feature, dict) or not feature.get("id"):
            return None
        if feature.get("archived") and not self.config.include_archived:
            return None
        aux = await self._auxiliary_for([str(feature["id"])])
        await self._parent_feature(feature, aux)
        return self.enrich(feature, aux)

    async def list_ids(self) -> AsyncIterator[str]:
        async for page in self._pages(FEATURES, self._feature_params()):
            for feature in page:
                if feature.get("id"):
                    yield str(feature["id"])

    def native_id(self, record: dict[str, Any]) -> str:
        return str(record["id"])

    # -------------------------------------------------------- push

    def webhook_probe(self, query: Mapping[str, str]) -> str | None:
        """Subscription probe: `GET <url>?validationToken=...` is answered 200 text/plain with
        the token as sent. The probe carries the same Authorization value as notifications, but
        the hub hands probes the query only; echoing a token proves reachability, nothing more."""
        token = query.get("validationToken")
        return token if token else None

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """The subscription's `Authorization` value equals `webhook_secret` (constant time)."""
        secret = self.config.webhook_secret
        if secret is None:
            raise WebhookRejected(
                f"source {self.name!r} has no webhook_secret: create the Productboard webhook with "
                f"notification.headers.authorization set, and put the same value in sources.{self.name}.webhook_secret"
            )
        given = header_value(headers, "Authorization")
        if not given:
            raise WebhookRejected("missing Authorization header")
        if not hmac.compare_digest(given.strip().encode(), secret.get_secret_value().strip().encode()):
            raise WebhookRejected("Authorization header does not match the webhook secret")

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """`{"data": {"id"?, "eventType", "links": {"target"}}}` -> refetch / delete / ignore.

        Delivery id: notifications carry no delivery id (`data.id` is the *entity's* id, the
        same for every change to it), so it is the body's SHA-256 plus the dedupe window the
        delivery arrived in: a retried notification within `webhook_dedupe_window` is one
        delivery, while the next change to the same feature later on is a new one (a pure body
        hash would swallow every later notification about that feature forever).
        """
        payload = self.json_object(body)
        window = int(self.clock() // self.dedupe_window)
        delivery_id = f"{body_digest(body)}:{window}"
        return WebhookDelivery(delivery_id=delivery_id, events=self._events(payload), payload=payload)

    def _events(self, payload: dict[str, Any]) -> list[WebhookEvent]:
        data = _obj(payload.get("data"))
        event = str(data.get("eventType") or "")
        target = str((data.get("links") or {}).get("target") or "")
        if event in FEATURE_EVENTS or event == "feature.deleted":
            feature_id = str(data.get("id") or "") or _feature_id_from_path(target)
            if not feature_id:
                return [IgnoreEvent(f"{event} without a feature id")]
            if event == "feature.deleted":
                return [DeleteRecord(feature_id)]
            return [RefetchRecord(feature_id)]
        if event in LINKED_EVENTS:
            values = parse_qs(urlsplit(target).query).get(LINKED_EVENTS[event], [])
            entity = values[0] if values else ""
            if not entity:
                return [IgnoreEvent(f"{event} without an entity in its target link")]
            # A custom-field value may belong to a component or product: refetching an id that
            # is no feature answers 404, which the hub records as "gone" only for ids it stores.
            return [RefetchRecord(entity)]
        return [IgnoreEvent(f"Productboard event {event or '(none)'!r} is not synced")]


# ---------------------------------------------------------------- helpers


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(item["id"]): item for item in items if item.get("id")}


def _add_assignments(aux: Auxiliary, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row.get("assigned") is False:
            continue
        fid = (row.get("feature") or {}).get("id")
        rid = (row.get("release") or {}).get("id")
        if fid and rid:
            aux.assignments.setdefault(str(fid), []).append(str(rid))


def _add_values(aux: Auxiliary, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        entity_ref = row.get("hierarchyEntity") or {}
        entity = entity_ref.get("id")
        # Values of components and products share the listing (and, in the API's own example,
        # even an id with a feature): only feature values are joined.
        if entity and entity_ref.get("type") in (None, "feature", "subfeature"):
            # Only what `enrich` reads (the row's links and entity ref would be kept for nothing).
            kept = {"customField": {"id": (row.get("customField") or {}).get("id")}, "type": row.get("type")}
            aux.values.setdefault(str(entity), []).append({**kept, "value": row.get("value")})


def _add_jira(aux: Auxiliary, integration: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        connection = row.get("connection") or {}
        fid = row.get("featureId")
        if fid and connection.get("issueKey"):
            aux.jira.setdefault(str(fid), []).append(
                {
                    "integration_id": integration,
                    "issueKey": connection.get("issueKey"),
                    "issueId": connection.get("issueId"),
                }
            )


def _parent_ref(parent: Any) -> tuple[str | None, str | None]:
    if not isinstance(parent, dict):
        return None, None
    for kind in ("feature", "component", "product"):
        ref = parent.get(kind)
        if isinstance(ref, dict) and ref.get("id"):
            return kind, str(ref["id"])
    return None, None


def _plain_value(value: Any) -> Any:
    """A custom-field value as plain JSON: dropdown -> label, multi-dropdown -> labels,
    member -> email; numbers, text and HTML as given."""
    if isinstance(value, dict):
        if "label" in value:
            return value.get("label")
        if "email" in value:
            return value.get("email")
        return value
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    return value


def _date_or_none(value: Any) -> str | None:
    """Timeframe dates are `YYYY-MM-DD` or the string "none"."""
    return value if isinstance(value, str) and value != "none" else None


def _pick_release(releases: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The release a feature ships in: the earliest-ending one not completed and not archived,
    else the latest-ending one."""
    if not releases:
        return None
    open_ = [r for r in releases if r.get("state") != "completed" and not r.get("archived")]
    if open_:
        return min(open_, key=lambda r: (r.get("endDate") or "9999-12-31", r["id"]))
    return max(releases, key=lambda r: (r.get("endDate") or "", r["id"]))


def _feature_id_from_path(url: str) -> str:
    parts = [p for p in urlsplit(url).path.split("/") if p]
    return parts[-1] if len(parts) >= 2 and parts[-2] == "features" else ""


def _updated(feature: dict[str, Any]) -> datetime | None:
    value = feature.get("updatedAt")
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
