"""Aha! Roadmaps: per-workspace list endpoints for pulls, activity/integration webhooks for pushes.

API reference (REST v1):
- overview, auth, pagination, rate limits: https://www.aha.io/api
- features:    https://www.aha.io/api/resources/features/list_features_in_a_product
- epics:       https://www.aha.io/api/resources/epics/list_epics_in_a_product
- initiatives: https://www.aha.io/api/resources/initiatives/list_initiatives_in_a_product
- ideas:       https://www.aha.io/api/resources/ideas/list_ideas_in_a_product
- activity webhooks:    https://www.aha.io/support/roadmaps/integrations/aha-api/activity-webhooks-integration
- integration webhooks: https://github.com/aha-app/aha-services (lib/services/webhooks.rb)

Record shape. Every record is the tool's JSON object for one initiative, epic, feature or idea
as the list endpoint returns it with `fields=` (or the detail endpoint returns it), plus one
key the connector adds: `_opshub: {"type": "feature" | "epic" | "initiative" | "idea"}`, so
the mapping knows the record type without guessing from the reference number. Aha! ids are
globally unique numeric strings, so the native id is the record's `id` as is.

Thin lists. Aha!'s list endpoints answer only `id, reference_num, name, created_at, url,
resource` unless `fields=` names more (ideas add a few): the connector always asks for the
fields the mapping reads (`FIELDS`, plus `extra_fields` from the config).

Ordering and cursor. One stream per (workspace, record type), each read with `updated_since =
its cursor - overlap`. Aha! documents no sort order for these lists (the sample answers come by
id, ideas newest first), so a stream reads all of its pages and sorts them by (updated_at, id)
before `connectors.multi.merged_pages` merges the streams into pages in ascending update order.
The cursor holds one `{updated, id}` per stream (`ScopeCursors`, scope "PRJ1/features"), so a
crash resumes every stream from the last stored page, and a type or workspace added later
starts with a full read. Memory grows with one stream's changes since its cursor (a full sync
of a large workspace holds its features in memory once).

Webhooks. Aha! signs nothing: the shared secret travels in a header (see `verify`). Payloads are
partial (activity webhooks carry only changed fields; integration webhooks an old feature
shape without `complete` flags), so create/update become `RefetchRecord`, never `UpsertRecord`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, Unpack

import orjson

from connectors.aha.config import RECORD_TYPES, AhaConfig
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
)
from connectors.cursors import parse_time
from connectors.http import RequestFailed
from connectors.multi import OrderKey, RecordStream, ScopeCursors, epoch, merged_pages
from connectors.paging import PageNumberPaginator, dig

MAX_PER_PAGE = 200  # Aha!'s ceiling for per_page
log = logging.getLogger(__name__)
T = TypeVar("T")
_RELISTS = 3  # listings started again after the total changed mid-listing
_DECODE_BATCH = 100  # records a stream decodes at a time from its encoded listing
LIST = "/products/{}/{}"  # /products/{prefix or id}/{features|epics|initiatives|ideas}
DETAIL = "/{}/{}"  # /features/{id} ... answers {"feature": {...}}
_SINCE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# record type (plural, as in the URLs) -> the singular key of detail answers and of `_opshub.type`
SINGULAR: dict[str, str] = {"initiatives": "initiative", "epics": "epic", "features": "feature", "ideas": "idea"}

_COMMON = (
    "id",
    "reference_num",
    "name",
    "created_at",
    "updated_at",
    "url",
    "resource",
    "product_id",
    "workflow_status",
    "description",
    "assigned_to_user",
    "created_by_user",
    "tags",
    "score",
    "score_facts",
    "custom_fields",
    "integration_fields",
)
# What the mapping (mappings/aha.yaml) reads, per record type.
FIELDS: dict[str, tuple[str, ...]] = {
    "features": (
        *_COMMON,
        "start_date",
        "due_date",
        "project",
        "workflow_kind",
        "release",
        "epic",
        "initiative",
        "progress",
        "original_estimate",
    ),
    "epics": (*_COMMON, "start_date", "due_date", "project", "release", "initiative", "progress"),
    "initiatives": (*_COMMON, "start_date", "end_date", "project", "status_changed_on", "progress", "effort", "value"),
    "ideas": (
        *_COMMON,
        "product",
        "votes",
        "duplicate_of",
        "feature",
        "epic",
        "created_by_idea_user",
        "created_by_portal_user",
        "categories",
    ),
}

# Activity webhook `auditable_type` -> record type. Aha! renamed master features to epics
# and strategic initiatives to initiatives; ideas are namespaced models.
AUDITABLE: dict[str, str] = {
    "feature": "features",
    "epic": "epics",
    "master_feature": "epics",
    "initiative": "initiatives",
    "strategic_initiative": "initiatives",
    "idea": "ideas",
    "ideas/idea": "ideas",
    "ideas::idea": "ideas",
}
_PREFIX = re.compile(r"^([A-Z][A-Z0-9]*)-")


def _updated(record: Mapping[str, Any]) -> datetime | None:
    value = record.get("updated_at")
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _numeric(value: Any) -> int:
    text = str(value)
    return int(text) if text.isdigit() else 0


def _order_key(record: dict[str, Any]) -> OrderKey:
    return (_updated(record) or epoch(), _numeric(record.get("id")))


def tag(record: dict[str, Any], record_type: str) -> dict[str, Any]:
    """The record with `_opshub.type` set (`feature`, `epic`, `initiative`, `idea`)."""
    record["_opshub"] = {**(record.get("_opshub") or {}), "type": SINGULAR.get(record_type, record_type)}
    return record


class _TypeStream(RecordStream):
    """One workspace's records of one type, all pages read then sorted by (updated_at, id)."""

    def __init__(self, connector: AhaConnector, product: str, record_type: str, since: datetime | None) -> None:
        super().__init__(f"{product}/{record_type}")
        self.connector = connector
        self.product = product
        self.record_type = record_type
        self.since = since

        self._sorted: deque[bytes] | None = None  # the listing, in order, still encoded

    @property
    def has_more(self) -> bool:
        return self._sorted is None or bool(self._sorted)

    async def fetch_page(self) -> None:
        """The first call lists the whole stream (kept as JSON bytes, a fraction of the
        memory of decoded records) and sorts it; each call then decodes the next 100."""
        if self._sorted is None:
            listed = await self.connector.list_records(
                self.product, self.record_type, since=self.since, full=True, keep=_encoded_with_key
            )
            listed.sort(key=lambda entry: entry[0])
            self._sorted = deque(encoded for _, encoded in listed)
        for _ in range(min(_DECODE_BATCH, len(self._sorted))):
            self.pending.append(orjson.loads(self._sorted.popleft()))


def _record_id(record: dict[str, Any]) -> str:
    return str(record["id"])


def _encoded_with_key(record: dict[str, Any]) -> tuple[OrderKey, bytes]:
    return _order_key(record), compact_json(record)


class AhaConnector(Connector):
    tool: ClassVar[str] = "aha"
    config_model: ClassVar[type[ConnectorConfig]] = AhaConfig
    supports_webhooks: ClassVar[bool] = True
    # Never stored with a delivery: the configured `webhook_header`, added per source below.
    webhook_secret_headers: ClassVar[frozenset[str]] = frozenset()

    config: AhaConfig

    def __init__(self, name: str, config: ConnectorConfig, **options: Unpack[ConnectorOptions]) -> None:
        super().__init__(name, config, **options)
        config = self.config
        self.http = self.source_client(
            auth=BearerAuth(config.api_key.get_secret_value()),
            auth_hint=(
                f"sources.{name}.api_key: an Aha! API key (Settings > Personal > Developer > API keys) of a user "
                f"who can see the workspaces {', '.join(config.products)}"
            ),
        )
        self.per_page = min(config.page_size, MAX_PER_PAGE)
        self._types: dict[str, str] = {}  # native id -> record type (plural), from everything seen
        self._prefixes = {p for p in config.products if not p.isdigit()}
        self._product_ids = {p for p in config.products if p.isdigit()}

    def native_id(self, record: dict[str, Any]) -> str:
        return str(record["id"])

    # -------------------------------------------------------- listing

    def fields_for(self, record_type: str) -> str:
        return ",".join(dict.fromkeys((*FIELDS[record_type], *self.config.extra_fields)))

    async def list_records(
        self,
        product: str,
        record_type: str,
        *,
        since: datetime | None = None,
        full: bool = True,
        keep: Callable[[dict[str, Any]], T],
    ) -> list[T]:
        """Every record of a type in a workspace (updated since `since`), tagged with its type.

        `full` asks for the mapping's fields; without it the thin list (ids) is enough.
        `keep` turns each record into what is kept of it while the rest is listed: a sync
        keeps compact encoded records and the id listing ids, not a workspace of dicts.

        Aha! pages by number over a list in id order. A record deleted while we page moves
        every later one up a place, so the one at the next page boundary would be missed
        (and, in the id sweep, taken for deleted). `pagination.total_records` is compared on
        every page: when it changes, the listing starts again from page 1 (records keyed by
        id, so rows read twice count once), at most `_RELISTS` times.
        https://www.aha.io/api#pagination
        """
        path = LIST.format(product, record_type)
        out: dict[str, T] = {}
        for _ in range(_RELISTS + 1):
            paginator = PageNumberPaginator(
                self.per_page, lambda d: d.get(record_type) or [], block_path=("pagination",)
            )
            first_total: Any = None
            shifted = False
            while paginator.has_more:
                params: dict[str, Any] = {"page": paginator.current_value or 1, "per_page": self.per_page}
                if full:
                    params["fields"] = self.fields_for(record_type)
                if since is not None:
                    params["updated_since"] = since.astimezone(UTC).strftime(_SINCE_FORMAT)
                data, response = await self.http.get_json(path, params)
                records = data.get(record_type) if isinstance(data, dict) else None
                if not isinstance(records, list) or not all(isinstance(r, dict) and "id" in r for r in records):
                    raise ConnectorError(
                        f"{self.name}: {path} did not answer a {record_type!r} list of records with ids"
                    )
                for record in records:
                    self._types[str(record["id"])] = record_type
                    out[str(record["id"])] = keep(tag(record, record_type))
                total = dig(data, ("pagination", "total_records"))
                if first_total is None:
                    first_total = total
                elif total != first_total:
                    shifted = True
                paginator.advance(response, data)
            if not shifted:
                break
            log.info(
                "%s: %s changed while listed (%s -> %s records); listing again", self.name, path, first_total, total
            )
        return list(out.values())

    async def fetch(self, cursor: str | None) -> AsyncIterator[Page]:
        """Records of every workspace and type in scope, merged into ascending `updated_at` order."""
        state = ScopeCursors.parse(cursor)
        streams = [
            _TypeStream(self, product, record_type, state.get(f"{product}/{record_type}").since(self.overlap))
            for product in self.config.products
            for record_type in self.config.record_types
        ]
        async for page in merged_pages(
            streams, state, page_size=self.config.page_size, order_key=_order_key, native_id=self.native_id
        ):
            yield page

    async def list_ids(self) -> AsyncIterator[str]:
        """Every record id in scope: the thin lists (no `fields=`), 200 a page."""
        for product in self.config.products:
            for record_type in self.config.record_types:
                for native_id in await self.list_records(product, record_type, full=False, keep=_record_id):
                    yield native_id

    async def fetch_one(self, native_id: str) -> dict[str, Any] | None:
        """`GET /{type}/{id}`: the type from what was seen (fetch, list_ids, webhooks), else each
        configured type in turn (a 404 means "not this type or gone")."""
        if not native_id.isdigit():
            return None
        known = self._types.get(native_id)
        order = [known] if known in self.config.record_types else []
        order += [t for t in RECORD_TYPES if t in self.config.record_types and t not in order]
        for record_type in order:
            try:
                data, _ = await self.http.get_json(DETAIL.format(record_type, native_id), allow_404=True)
            except RequestFailed as exc:
                if exc.status in (400, 422):
                    continue
                raise
            record = data.get(SINGULAR[record_type]) if isinstance(data, dict) else None
            if isinstance(record, dict) and str(record.get("id")) == native_id:
                if not self.in_scope(record):
                    return None
                self._types[native_id] = record_type
                return tag(record, record_type)
        self._types.pop(native_id, None)
        return None

    def in_scope(self, record: Mapping[str, Any]) -> bool:
        """The record belongs to a configured workspace (by product id or reference prefix)."""
        product_id = record.get("product_id") or (record.get("project") or record.get("product") or {}).get("id")
        if product_id is not None and str(product_id) in self._product_ids:
            return True
        prefix = _prefix(record.get("reference_num"))
        if prefix is not None:
            return prefix in self._prefixes
        return product_id is None  # nothing to tell: trust the endpoint

    # -------------------------------------------------------- push

    @property
    def secret_headers(self) -> frozenset[str]:
        """`webhook_header` may name any header; whichever it is carries the secret itself."""
        return super().secret_headers | {self.config.webhook_header.lower()}

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """The shared secret, compared in constant time, from the header `webhook_header` names.

        Aha! signs nothing and sends no secret of its own: a deployment makes the delivery carry
        the secret in a header (a reverse proxy adding it, or the hook URL's user-info, which
        HTTP clients send as `Authorization: Basic`). With the default header `Authorization`,
        `Bearer <secret>` and `Basic base64(<any user>:<secret>)` are accepted; a custom header
        must carry the secret alone. A secret in the URL's query string is never read: URLs end
        up in access logs. The secret does not bind the body: TLS and a private URL do.
        """
        secret = self.config.webhook_secret
        if secret is None:
            raise WebhookRejected(
                f"source {self.name!r} has no webhook_secret: set one in sources.{self.name}.webhook_secret and "
                f"send it in the {self.config.webhook_header} header (Aha! signs nothing)"
            )
        value = header_value(headers, self.config.webhook_header)
        if not value:
            raise WebhookRejected(f"missing {self.config.webhook_header} header")
        given = value.strip()
        if self.config.webhook_header.lower() == "authorization":
            scheme, _, credentials = given.partition(" ")
            if scheme.lower() == "bearer":
                given = credentials.strip()
            elif scheme.lower() == "basic":
                try:
                    given = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[2]
                except (binascii.Error, UnicodeDecodeError):
                    given = ""
            else:
                given = ""  # Authorization needs a scheme: Bearer or Basic
        if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            raise WebhookRejected(f"{self.config.webhook_header} does not carry the webhook secret")

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Route a verified delivery; raises ValueError when the body is not a JSON object.

        Delivery id: `audit:<id>` for activity webhooks (each audit entry has its own id), else
        `sha256:<hex of the body>` (Aha! sends no delivery id header).
        """
        payload = self.json_object(body)
        audit = payload.get("audit")
        if payload.get("type") == "audit" and isinstance(audit, dict) and audit.get("id") is not None:
            delivery_id = f"audit:{audit['id']}"
        else:
            delivery_id = body_digest(body)
        return WebhookDelivery(delivery_id=delivery_id, events=self._events(payload), payload=payload)

    def _events(self, payload: dict[str, Any]) -> list[WebhookEvent]:
        if payload.get("type") == "audit":
            audit = payload.get("audit")
            if not isinstance(audit, dict):
                return [IgnoreEvent("activity webhook without an audit")]
            return self._audit_events(audit)
        event = str(payload.get("event") or "")
        if event in ("create_feature", "update_feature"):
            feature = payload.get("feature")
            if not isinstance(feature, dict) or not str(feature.get("id") or "").isdigit():
                return [IgnoreEvent(f"{event} without a feature id")]
            if "features" not in self.config.record_types:
                return [IgnoreEvent(f"{event}: features are not synced by this source")]
            if not self._prefix_in_scope(feature.get("reference_num")):
                return [IgnoreEvent(f"{event}: feature {feature.get('reference_num')} is outside this source's scope")]
            self._types[str(feature["id"])] = "features"
            # The integration payload is an old feature shape (no `complete` flag, no workspace):
            # refetch rather than store it.
            return [RefetchRecord(str(feature["id"]))]
        if event in ("create_release", "update_release"):
            release = payload.get("release") or {}
            return [
                IgnoreEvent(
                    f"{event} {release.get('reference_num')}: releases are not items; features carry their release "
                    f"and pick up its new name/date when they are next synced"
                )
            ]
        return [IgnoreEvent(f"Aha! delivery {event or payload.get('type') or '(unknown)'!r} is not synced")]

    def _audit_events(self, audit: dict[str, Any]) -> list[WebhookEvent]:
        action = str(audit.get("audit_action") or "")
        own = self._synced_type(audit.get("auditable_type"))
        native_id = str(audit.get("auditable_id") or "")
        if own is not None and native_id.isdigit():
            self._types[native_id] = own
            if action == "destroy":
                return [DeleteRecord(native_id, at=_time(audit.get("created_at")))]
            if action in ("create", "update"):
                return [RefetchRecord(native_id)]
            return [IgnoreEvent(f"audit action {action!r} on {own} {native_id} is not synced")]
        # A change to something a record owns (its description note, a requirement, a comment,
        # a tag): refetch the record it belongs to.
        parent = self._synced_type(audit.get("associated_type"))
        parent_id = str(audit.get("associated_id") or "")
        if parent is not None and parent_id.isdigit() and action in ("create", "update", "destroy"):
            self._types[parent_id] = parent
            return [RefetchRecord(parent_id)]
        return [
            IgnoreEvent(
                f"audit {action or '?'} of {audit.get('auditable_type') or '?'} {audit.get('auditable_id') or ''}"
                f" is not about a synced record".replace("  ", " ")
            )
        ]

    def _synced_type(self, auditable_type: Any) -> str | None:
        record_type = AUDITABLE.get(str(auditable_type or "").strip().lower())
        return record_type if record_type in self.config.record_types else None

    def _prefix_in_scope(self, reference: Any) -> bool:
        """False only when the reference names a workspace prefix and the scope is all prefixes."""
        prefix = _prefix(reference)
        if prefix is None or self._product_ids:
            return True
        return prefix in self._prefixes


def _prefix(reference: Any) -> str | None:
    match = _PREFIX.match(reference) if isinstance(reference, str) else None
    return match.group(1) if match else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
