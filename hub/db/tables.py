"""Table definitions (SQLAlchemy Core). Alembic migrations in hub/migrations mirror these.

Items keep their full normalised document as JSON text (`doc`, written by pydantic's
serializer) plus the columns the read API filters and sorts on. Multi-valued filters
(labels, assignees) live in side tables so they can be indexed on both SQLite and
PostgreSQL.

A column written from a value the shared schema does not bound (an item's key, container,
parent, labels, link targets, people's emails and native ids, status names) is `Text`, never
`String(n)`: PostgreSQL cut such values at the declared length where SQLite kept them whole
(migration 0025). `String(n)` is for values the schema, the config or the hub bounds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores no zone; we always write UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite compares these as text: keep one fixed format with no offset.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        tz = value.tzinfo
        if tz is UTC:
            return value  # type: ignore[no-any-return]
        if tz is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


# Keep constraint names stable across backends so migrations can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sources = Table(
    "sources",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("tool", String(50), nullable=False),
    Column("status", String(20), nullable=False, server_default="ok"),
    Column("status_message", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


def postgresql_only(index: Index) -> Index:
    """An index only PostgreSQL gets (its migration skips SQLite): `info["dialect"]` tells
    the schema comparison (tests/test_migrations.py), `ddl_if` tells `create_all`.
    https://docs.sqlalchemy.org/en/20/core/ddl.html#controlling-ddl-generation-of-constraints-and-indexes"""
    return _only_on("postgresql", index)


def sqlite_only(index: Index) -> Index:
    """An index only SQLite gets (its migration skips PostgreSQL), as `postgresql_only`."""
    return _only_on("sqlite", index)


def _only_on(dialect: str, index: Index) -> Index:
    index.info["dialect"] = dialect
    return index.ddl_if(dialect=dialect)


# The equality filters of GET /v1/items on `items` columns with few values, in the order the
# page-order indexes carry them behind (updated_at, id). Ordering is untouched (they follow
# the unique id), but a walk can test them on the index entry: SQLite defers the table seek
# until a column outside the index is needed (OP_DeferredSeek), PostgreSQL checks a key
# column's condition as an index condition. Without them a walk by one filter read every
# candidate's wide row to test a second one: `source=acme-linear&priority_level=urgent` read
# ~10,000 rows per page of 100, cold (bench/README.md, issue 13).
ITEM_FILTERS = ("deleted", "status_category", "kind", "priority_level", "source", "tool")


# `q=` tests key and title on every row a walk passes (~1,400 rows a page for a term 7 % of the
# items hold). Carried in a page-order index too (migration 0024), the test reads the index
# entry, not the wide row: SQLite appends them to ix_items_updated; PostgreSQL, whose B-tree
# entries are limited to ~2.7 KB, keeps them in a partial index of the items whose entry is
# bounded (`TEXT_WALK_BOUND`, hub/store/queries.py reads it), and the few others in a second.
TEXT_COLUMNS = ("key", "title")


def _filters_but(leading: str) -> list[str]:
    return [column for column in ITEM_FILTERS if column != leading]


items = Table(
    "items",
    metadata,
    Column("id", String(320), primary_key=True),
    Column("source", String(100), nullable=False),
    Column("tool", String(50), nullable=False),
    Column("native_id", String(200), nullable=False),
    Column("key", Text),
    Column("title", Text, nullable=False, server_default=""),
    Column("kind", String(20), nullable=False),
    Column("status_category", String(20), nullable=False),
    Column("priority_level", String(20), nullable=False),
    Column("container_id", Text),
    Column("container_key", Text),
    Column("parent_id", Text),
    Column("rice_score", Float),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Column("deleted_at", UTCDateTime),
    Column("version", BigInteger, nullable=False),
    Column("synced_at", UTCDateTime, nullable=False),
    Column("doc", Text, nullable=False),
    Column("raw", Text),
    # Each page-order index carries the other low-cardinality filters after (updated_at, id)
    # (migration 0017): a walk tests them in the index and reads the wide row only for a match.
    # On SQLite ix_items_updated also ends with key and title (migration 0024, below).
    postgresql_only(Index("ix_items_updated", "updated_at", "id", *ITEM_FILTERS)),
    sqlite_only(Index("ix_items_updated", "updated_at", "id", *ITEM_FILTERS, *TEXT_COLUMNS)),
    Index("ix_items_source_updated", "source", "updated_at", "id", *_filters_but("source")),
    Index("ix_items_kind_updated", "kind", "updated_at", "id", *_filters_but("kind")),
    Index("ix_items_status_updated", "status_category", "updated_at", "id", *_filters_but("status_category")),
    Index("ix_items_container", "container_id", "updated_at", "id"),
    Index("ix_items_container_key", "container_key", "updated_at", "id"),
    # Partial (migration 0011): most items have no parent, and a mostly-NULL index made
    # SQLite's statistics send the roadmap walk's `parent_id IN (...)` to a full scan.
    Index(
        "ix_items_parent",
        "parent_id",
        sqlite_where=text("parent_id IS NOT NULL"),
        postgresql_where=text("parent_id IS NOT NULL"),
    ),
    Index("ix_items_key", "key"),
    Index("ix_items_rice", "rice_score", "id"),
)

# No foreign key from the side tables to items: only store.apply writes them, in the same
# transaction as the item row, and items are never hard-deleted (tombstones). A foreign key
# would only add a per-row check, which measured as about half the cost of these inserts
# on PostgreSQL (store.apply's throughput target is 10,000 items/s).
# `updated_at` is a copy of the item's, written with the row (store.apply rewrites the rows on
# every upsert; a tombstone keeps updated_at). It lets a label or assignee filter walk its
# (value, updated_at, item_id) index in page order instead of probing every item in turn.
item_labels = Table(
    "item_labels",
    metadata,
    Column("item_id", String(320), primary_key=True),
    Column("label", Text, primary_key=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_item_labels_label", "label", "updated_at", "item_id"),
)

item_assignees = Table(
    "item_assignees",
    metadata,
    Column("item_id", String(320), primary_key=True),
    Column("person_id", Text, primary_key=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_item_assignees_person", "person_id", "updated_at", "item_id"),
)

# One row per link an item states. `target` is the hub id (target_id) or the URL the tool
# gave; `target_tool`/`target_key` is what that URL or URN names (hub/links.py), matched
# against items' keys at read time, so a link resolves whichever side arrives first.
item_links = Table(
    "item_links",
    metadata,
    Column("item_id", String(320), primary_key=True),
    Column("type", String(20), primary_key=True),
    Column("target", Text, primary_key=True),
    Column("target_id", Text),
    Column("target_tool", String(50)),
    Column("target_key", Text),
    Index("ix_item_links_target_id", "target_id"),
    Index("ix_item_links_target_key", "target_tool", "target_key"),
)

people = Table(
    "people",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text),
    Column("email", Text, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

person_identities = Table(
    "person_identities",
    metadata,
    Column("source", String(100), primary_key=True),
    # The tool's person id, or "email:<address>" where a tool only gives an email.
    Column("native_id", Text, primary_key=True),
    Column("person_id", String(64), ForeignKey("people.id"), nullable=False),
    Column("name", Text),
    Column("email", Text),
    Index("ix_person_identities_person", "person_id"),
    Index("ix_person_identities_email", "email"),
)

# The change log (outbox). `seq` is allocated from `change_counter` inside the writing
# transaction, so it is gap-free and commit order equals seq order (see store.apply).
changes = Table(
    "changes",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("item_id", String(320), nullable=False),
    Column("op", String(10), nullable=False),
    Column("fields", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_changes_item", "item_id"),
)

change_counter = Table(
    "change_counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source", String(100), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("counts", Text, nullable=False, server_default="{}"),
    Column("error", Text),
    # Records that failed to map: [{"native_id", "error"}], capped (the run goes on past them).
    Column("record_errors", Text, nullable=False, server_default="[]"),
    Column("cursor", Text),
    Index("ix_sync_runs_source", "source", "started_at"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

webhook_inbox = Table(
    "webhook_inbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    # The delivery's headers and body are in `webhook_inbox_bodies` (never rewritten).
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("claimed_at", UTCDateTime),  # last claim or heartbeat: the claim lapses CLAIM_TTL after it
    Column("next_attempt_at", UTCDateTime),
    Column("processed_at", UTCDateTime),
    # Who holds the claim: `finish` counts only while the row still carries this token.
    Column("claim_token", String(32)),
    UniqueConstraint("source", "delivery_id"),
    Index("ix_webhook_inbox_status", "status", "id"),
)

# What a delivery carries and never changes after intake, keyed by its inbox id and written in
# the intake's transaction (migration 0023). Apart from the inbox row, which every claim, renewal
# and settle rewrites: SQLite rewrites a changed row whole (a ~5 KB body: its overflow pages
# too) and PostgreSQL writes a new version of it, so the body was copied at each state change.
# Nothing in the hub deletes inbox rows (processed deliveries are kept for replay); a row deleted
# by hand takes its body with it (ON DELETE CASCADE), so that no body outlives its row: SQLite
# gives a deleted row's id to the next delivery when it was the highest.
webhook_inbox_bodies = Table(
    "webhook_inbox_bodies",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("webhook_inbox.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("headers", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("scope", String(20), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)

# What a source's mapping needs from its tool (`Connector.mapping_context()`, e.g. Jira's
# field catalog), kept so that webhooks can be mapped while the tool is unreachable.
source_contexts = Table(
    "source_contexts",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("context", Text, nullable=False),  # JSON
    Column("fetched_at", UTCDateTime, nullable=False),
)

# Items written from a webhook with only the base context (the source never synced and its
# tool was unreachable): mapped again from their stored raw record once the context arrives.
provisional_items = Table(
    "provisional_items",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("item_id", String(320), primary_key=True),
    Column("mapped_at", UTCDateTime, nullable=False),
)

# Status history: one row per status change of an item, on the tool's clock. The primary key
# is the fact's identity (hub/flow/history.py `Transition.identity`), so re-syncing, replaying
# webhooks or backfilling twice adds no row; among duplicate facts the best source is kept
# (`source_rank`, lower is better). `to_name` is '' where the source names no status.
status_transitions = Table(
    "status_transitions",
    metadata,
    Column("item_id", String(320), primary_key=True),
    Column("at", UTCDateTime, primary_key=True),
    Column("to_category", String(20), primary_key=True),
    Column("to_name", Text, primary_key=True),
    Column("from_category", String(20)),
    Column("from_name", Text),
    Column("source", String(20), nullable=False),
    Column("source_rank", Integer, nullable=False),
    Column("native_id", Text),
    Index("ix_status_transitions_at", "at"),
)

_COPIED_FILTERS = ("kind", "deleted", "source", "tool", "container_id", "container_key")
"""The filter columns `flow_facts` and `flow_days` copy from `items`, in the order migration
0015's covering indexes include them."""


# The text index of GET /v1/items?q= (migration 0019, issue 13): PostgreSQL's pg_trgm GIN on
# (key, title), which answers `ILIKE '%x%'` (hub/store/queries.py). SQLite's counterpart is the
# FTS5 table `items_text` and its triggers, which this metadata does not describe
# (`SQLITE_TEXT_TABLES`).
postgresql_only(
    Index(
        "ix_items_text_trgm",
        items.c.key,
        items.c.title,
        postgresql_using="gin",
        postgresql_ops={"key": "gin_trgm_ops", "title": "gin_trgm_ops"},
    )
)

# PostgreSQL's counterpart of SQLite's wider ix_items_updated (TEXT_COLUMNS above, migration
# 0024): the `q=` walk reads key and title from this index by an index-only scan
# (https://www.postgresql.org/docs/current/indexes-index-only-scans.html), not from the heap,
# and reads the heap only for the page's rows. A B-tree entry may not exceed ~2.7 KB
# (https://www.postgresql.org/docs/current/btree.html#BTREE-IMPLEMENTATION), and titles
# are unbounded: the index holds only the items whose variable-length columns sum to at most
# TEXT_WALK_BOUND bytes (all but a freak title), `ix_items_text_long` the others, and a `q=`
# page merges a walk of each (hub/store/queries.py). The query repeats the predicate word for
# word, so that the planner can prove the partial index applies.
TEXT_WALK_BOUND = 2000
TEXT_WALK_SIZE = (
    "octet_length(id) + octet_length(source) + octet_length(tool) + coalesce(octet_length(key), 0)"
    " + octet_length(title)"
)
postgresql_only(
    Index(
        "ix_items_text_walk",
        *(items.c[name] for name in ("updated_at", "id", *ITEM_FILTERS, *TEXT_COLUMNS)),
        postgresql_where=text(f"{TEXT_WALK_SIZE} <= {TEXT_WALK_BOUND}"),
    )
)
postgresql_only(
    Index(
        "ix_items_text_long",
        items.c.updated_at,
        items.c.id,
        postgresql_where=text(f"{TEXT_WALK_SIZE} > {TEXT_WALK_BOUND}"),
    )
)

SQLITE_TEXT_TABLES = frozenset(
    {"items_text", "items_text_data", "items_text_idx", "items_text_config", "items_text_ids", "items_text_rows"}
)
"""The FTS5 table over items' key and title on SQLite (migration 0019) and the shadow tables
FTS5 keeps it in, its map of item ids to stable docids and the view it reads them through
(migration 0022): the schema has them, the metadata does not (SQLAlchemy has no virtual
tables, and the map is SQLite's only), so the schema comparison leaves them out."""


# Per-item facts derived from an item's whole status history (hub/flow/history.py) and its
# row, kept so flow metrics and forecasts read one narrow row per item instead of every
# transition (issue 9's speed target). Rewritten from the full stored history whenever an
# item's transitions, status, created_at or completed_at are written, in the same transaction
# (hub/store/flow_facts.py), so they never depend on the order facts arrived in.
flow_facts = Table(
    "flow_facts",
    metadata,
    Column("item_id", String(320), primary_key=True),
    Column("created_at", UTCDateTime),
    Column("category", String(20), nullable=False),
    Column("has_history", Boolean, nullable=False),
    Column("start", String(20), nullable=False),
    Column("started_at", UTCDateTime),
    # Final completion (history, else the tool's completed_at) when the item is done now.
    Column("completed_at", UTCDateTime),
    # When the item is cancelled now and its history ends cancelled: when it got there.
    Column("cancelled_at", UTCDateTime),
    # Open now but done before: every seen entry into done (JSON list of ISO times), and the
    # last of them (indexed: which items a period's reopened count must look at).
    Column("done_entries", Text),
    Column("last_done_entry", UTCDateTime),
    Column("final_category", String(20)),
    # Day numbers (date.toordinal() of the UTC day): creation, and when the category before
    # the history is unknown (a first sighting) and the history begins after that day, the
    # day it begins (the days between are `LeftOut.status_unknown` in the cumulative flow).
    Column("born_day", Integer),
    Column("known_from_day", Integer),
    # Copies of the item's filter columns (/v1/items filters), so a flow request over many
    # items reads this narrow table alone instead of joining the wide `items` rows.
    Column("source", String(100), nullable=False),
    Column("tool", String(50), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("container_id", Text),
    Column("container_key", Text),
    Column("deleted", Boolean, nullable=False),
    # Partial (migration 0014): most rows leave these NULL, and every query on them is a
    # range (which implies NOT NULL), so only the rows that have one are indexed.
    *(
        Index(
            f"ix_flow_facts_{column}",
            column,
            sqlite_where=text(f"{column} IS NOT NULL"),
            postgresql_where=text(f"{column} IS NOT NULL"),
        )
        for column in ("completed_at", "cancelled_at", "last_done_entry", "known_from_day")
    ),
    Index("ix_flow_facts_category", "category", "completed_at"),
    # Covers a flow request's count of the matching items by filter (kind, not deleted).
    Index("ix_flow_facts_counts", "kind", "deleted", "final_category", "born_day"),
    Index("ix_flow_facts_container_id", "container_id"),
    Index("ix_flow_facts_container_key", "container_key"),
    # The items in progress with what a flow request lists of them (migration 0015).
    postgresql_only(
        Index(
            "ix_flow_facts_wip",
            "created_at",
            postgresql_include=["item_id", "start", "started_at", "has_history", *_COPIED_FILTERS],
            postgresql_where=text("category = 'in_progress'"),
        )
    ),
    # SQLite: rows live in the primary key's b-tree, so a lookup by item id is one search.
    sqlite_with_rowid=False,
)

# The cumulative flow's input: the days on which an item's category at the end of the day
# changed (from the day it was created), with the category before (NULL: not counted, i.e.
# not created yet or unknown). Summing +category -prev_category over an item's rows up to a
# day gives its category that day (hub/insights/flow.py `_cfd_days`). Keyed by day first and
# with its own copy of the filter columns: the aggregate reads one range of recent days and
# nothing else (SQLite keeps a WITHOUT ROWID table in primary key order).
flow_days = Table(
    "flow_days",
    metadata,
    Column("day", Integer, primary_key=True),
    Column("item_id", String(320), primary_key=True),
    Column("category", String(20)),
    Column("prev_category", String(20)),
    Column("source", String(100), nullable=False),
    Column("tool", String(50), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("container_id", Text),
    Column("container_key", Text),
    Column("deleted", Boolean, nullable=False),
    Index("ix_flow_days_item", "item_id"),
    # The cumulative flow's aggregate from the index alone (migration 0015).
    postgresql_only(
        Index("ix_flow_days_cfd", "day", postgresql_include=["category", "prev_category", *_COPIED_FILTERS])
    ),
    sqlite_with_rowid=False,
)

# A deletion the hub received for an id it has never stored (a webhook that overtook the
# create, e.g. Jira `issue_deleted`, Linear `remove`, GitHub `deleted`). Kept so that an older
# create or update arriving later cannot bring the item back (store.apply). Once an items row
# exists for the id, the tombstone moves onto it (items.deleted / deleted_at) and this row goes.
# Not an item: reads, the change feed and the deletion sweep never see these rows.
item_tombstones = Table(
    "item_tombstones",
    metadata,
    Column("item_id", String(320), primary_key=True),
    Column("source", String(100), nullable=False),
    Column("native_id", String(200), nullable=False),
    Column("deleted_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

# Outbound webhooks (hub/outbound/). A subscription's position in the change feed is its
# `cursor` (the last seq it has settled: delivered, or skipped by its filter) and, for hub
# events, `event_cursor` (the last hub_events id): no second queue exists that could drift
# from the feed. `lease_owner`/`lease_until` give one process at a time the right to
# deliver for the subscription; the cursor moves only while the lease is held (fencing).
# `secrets` is JSON [{"secret": "whsec_...", "expires_at": iso | null}]: kept in clear text
# because the hub must sign with them (Standard Webhooks' symmetric scheme).
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("filter", Text, nullable=False, server_default="{}"),
    Column("event_types", Text, nullable=False),
    Column("status", String(20), nullable=False, server_default="active"),
    Column("disabled_reason", Text),
    Column("secrets", Text, nullable=False),
    Column("cursor", BigInteger, nullable=False, server_default="0"),
    Column("event_cursor", BigInteger, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),  # failed attempts of the head message
    Column("next_attempt_at", UTCDateTime),
    Column("lease_owner", String(40)),
    Column("lease_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per delivery attempt (kept for the log and the API; replay moves the cursor back).
subscription_deliveries = Table(
    "subscription_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("subscription_id", String(40), nullable=False),
    Column("msg_id", String(100), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("seq", BigInteger),  # the change's seq (item events)
    Column("event_id", BigInteger),  # the hub event's id (other events)
    Column("attempt", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # delivered | failed
    Column("response_code", Integer),
    Column("latency_ms", Float, nullable=False),
    Column("error", Text),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_subscription_deliveries_sub", "subscription_id", "id"),
)

# Events that are not item changes: sync.failed, source.failing, subscription.disabled. Their
# ids are allocated while holding the change counter's lock (hub/outbound/events.py), so, like
# change seqs, commit order is id order and a cursor never skips one.
hub_events = Table(
    "hub_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("type", String(40), nullable=False),
    Column("source", String(100)),
    Column("subject", String(320)),
    Column("data", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Report facts (hub/store/report_facts.py): what the quality, digest and priorities reports
# need of an item, in one narrow row written by store.apply with the items row (same
# transaction), so a report over 100,000 items neither parses documents nor reads the wide
# items rows (issue 10's speed target: scanning `items` means reading every document's pages).
# The first columns copy the items row's (a tombstone updates `deleted` too); the rest come
# from the document. Dates are ISO text (YYYY-MM-DD: they compare as text); fallbacks is JSON
# `[{field, raw}]` or NULL. No foreign key, as for the side tables above.
item_report_facts = Table(
    "item_report_facts",
    metadata,
    Column("item_id", String(320), primary_key=True),
    Column("source", String(100), nullable=False),
    Column("container_id", Text),
    Column("container_key", Text),
    Column("kind", String(20), nullable=False),
    Column("status_category", String(20), nullable=False),
    Column("priority_level", String(20), nullable=False),
    Column("parent_id", Text),
    Column("rice_score", Float),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("url", Text),
    Column("container_name", Text),
    Column("due_on", String(10)),
    Column("release_on", String(10)),
    Column("has_assignee", Boolean, nullable=False),
    Column("has_estimate", Boolean, nullable=False),
    Column("has_description", Boolean, nullable=False),
    Column("has_iteration", Boolean, nullable=False),
    Column("has_rice", Boolean, nullable=False),
    Column("fallbacks", Text),
    Column("title_key", Text, nullable=False),  # normalised title (the quality report's duplicate rule)
    Column("container_family", Text),
    # Maintained by write_report_facts for the rows around each write (migration 0010, issue
    # 10 speed): the hygiene findings that relate an item to others are plain columns, so the
    # quality report reads each row once instead of joining the table to itself.
    # twin_key: md5 of container_family + "\n" + title_key (NULL without a family or a title):
    # the same-title rule's key, short enough for an index whatever the title's length.
    Column("twin_key", String(32)),
    Column("parent_missing", Boolean, nullable=False, server_default="0"),
    Column("has_live_child", Boolean, nullable=False, server_default="0"),
    Column("has_open_child", Boolean, nullable=False, server_default="0"),
    Column("has_title_twin", Boolean, nullable=False, server_default="0"),
    # Children by parent; deleted and status too, so the quality report finds the parents of
    # open children from this index alone.
    Index("ix_item_report_facts_parent", "parent_id", "deleted", "status_category"),
    # The container filter (migration 0009): a one-container report reads its
    # rows by index instead of scanning the table once per statement (the migration says
    # which other indexes were tried: with them SQLite scans them in GROUP BY order).
    Index("ix_item_report_facts_container", "container_id"),
    Index("ix_item_report_facts_container_key", "container_key"),
    # The rows that share a title key, found when one of them is written (migration 0010),
    # with what decides whether the group has twins (live, open, the sources: migration
    # 0018), so report_facts.shared_twin_keys reads the index alone.
    Index("ix_item_report_facts_twin_group", "twin_key", "deleted", "status_category", "source"),
    # Partial indexes (migration 0010) on the few rows the quality report lists by a flag or a
    # fallback: it reads them by index instead of scanning the table (PostgreSQL: about 0.1 s
    # a scan at 100,000 items on a loaded machine; a statement each). Only matching rows are in them.
    Index(
        "ix_item_report_facts_title_twin",
        "item_id",
        sqlite_where=text("has_title_twin = 1"),  # the form SQLAlchemy writes the term in
        postgresql_where=text("has_title_twin"),
    ),
    Index(
        "ix_item_report_facts_open_child",
        "item_id",
        sqlite_where=text("has_open_child = 1"),  # the form SQLAlchemy writes the term in
        postgresql_where=text("has_open_child"),
    ),
    Index(
        "ix_item_report_facts_fallbacks",
        "item_id",
        sqlite_where=text("fallbacks IS NOT NULL"),
        postgresql_where=text("fallbacks IS NOT NULL"),
    ),
    # SQLite only (migration 0016, issue 11 speed): every column the quality tallies read, in
    # their GROUP BY order, so SQLite counts them from this index without a sort.
    sqlite_only(
        Index(
            "ix_item_report_facts_tallies",
            "source",
            "container_id",
            "status_category",
            "kind",
            "priority_level",
            "has_assignee",
            "has_estimate",
            "has_description",
            "has_iteration",
            "has_rice",
            "has_open_child",
            "parent_missing",
            "deleted",
            "updated_at",
            "fallbacks",
            "item_id",
        )
    ),
)

# Dashboard sign-in sessions (hub/web/sessions.py). Only a hash of the session token is kept,
# as for API keys. Joined to api_keys on every request, so revoking the key ends the session;
# logout deletes the row.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("scope", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_web_sessions_expires_at", "expires_at"),
)

# Secrets the web processes must share (the session cookie signing key when HUB_WEB_SECRET is
# unset): the first process to need one inserts it, every other process reads the same row.
web_secrets = Table(
    "web_secrets",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
