"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 19:03:57.973181
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_counter")),
    )
    # One row: the change log's last sequence number, locked by every writer (store.apply).
    op.execute("INSERT INTO change_counter (id, last_seq) VALUES (1, 0)")
    op.create_table(
        "changes",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("op", sa.String(length=10), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_changes")),
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("ix_changes_item", ["item_id"], unique=False)

    op.create_table(
        "cursors",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "stream", name=op.f("pk_cursors")),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("tool", sa.String(length=50), nullable=False),
        sa.Column("native_id", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("title", sa.Text(), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status_category", sa.String(length=20), nullable=False),
        sa.Column("priority_level", sa.String(length=20), nullable=False),
        sa.Column("container_id", sa.String(length=200), nullable=True),
        sa.Column("container_key", sa.String(length=200), nullable=True),
        sa.Column("parent_id", sa.String(length=320), nullable=True),
        sa.Column("rice_score", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_items_container", ["container_id", "updated_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_items_container_key", ["container_key", "updated_at", "id"], unique=False
        )
        batch_op.create_index("ix_items_key", ["key"], unique=False)
        batch_op.create_index(
            "ix_items_kind_updated", ["kind", "updated_at", "id"], unique=False
        )
        batch_op.create_index("ix_items_parent", ["parent_id"], unique=False)
        batch_op.create_index("ix_items_rice", ["rice_score", "id"], unique=False)
        batch_op.create_index(
            "ix_items_source_updated", ["source", "updated_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_items_status_updated",
            ["status_category", "updated_at", "id"],
            unique=False,
        )
        batch_op.create_index("ix_items_updated", ["updated_at", "id"], unique=False)

    op.create_table(
        "item_links",
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=1000), nullable=False),
        sa.Column("target_id", sa.String(length=320), nullable=True),
        sa.Column("target_tool", sa.String(length=50), nullable=True),
        sa.Column("target_key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("item_id", "type", "target", name=op.f("pk_item_links")),
    )
    with op.batch_alter_table("item_links", schema=None) as batch_op:
        batch_op.create_index("ix_item_links_target_id", ["target_id"], unique=False)
        batch_op.create_index("ix_item_links_target_key", ["target_tool", "target_key"], unique=False)

    op.create_table(
        "people",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("email", name=op.f("uq_people_email")),
    )
    op.create_table(
        "sources",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("tool", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="ok", nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sources")),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.Text(), server_default="{}", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("record_errors", sa.Text(), server_default="[]", nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_runs_source", ["source", "started_at"], unique=False
        )

    op.create_table(
        "webhook_inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "status", sa.String(length=20), server_default="pending", nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_inbox")),
        sa.UniqueConstraint(
            "source", "delivery_id", name=op.f("uq_webhook_inbox_source_delivery_id")
        ),
    )
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_inbox_status", ["status", "id"], unique=False)

    op.create_table(
        "item_assignees",
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_id", "person_id", name=op.f("pk_item_assignees")),
    )
    with op.batch_alter_table("item_assignees", schema=None) as batch_op:
        batch_op.create_index(
            "ix_item_assignees_person", ["person_id", "updated_at", "item_id"], unique=False
        )

    op.create_table(
        "item_labels",
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_id", "label", name=op.f("pk_item_labels")),
    )
    with op.batch_alter_table("item_labels", schema=None) as batch_op:
        batch_op.create_index(
            "ix_item_labels_label", ["label", "updated_at", "item_id"], unique=False
        )

    op.create_table(
        "person_identities",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("native_id", sa.String(length=320), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_person_identities_person_id_people"),
        ),
        sa.PrimaryKeyConstraint(
            "source", "native_id", name=op.f("pk_person_identities")
        ),
    )
    with op.batch_alter_table("person_identities", schema=None) as batch_op:
        batch_op.create_index("ix_person_identities_email", ["email"], unique=False)
        batch_op.create_index(
            "ix_person_identities_person", ["person_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("person_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_person_identities_person")
        batch_op.drop_index("ix_person_identities_email")

    op.drop_table("person_identities")
    with op.batch_alter_table("item_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_item_labels_label")

    op.drop_table("item_labels")
    with op.batch_alter_table("item_assignees", schema=None) as batch_op:
        batch_op.drop_index("ix_item_assignees_person")

    op.drop_table("item_assignees")
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_inbox_status")

    op.drop_table("webhook_inbox")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_runs_source")

    op.drop_table("sync_runs")
    op.drop_table("sources")
    op.drop_table("people")
    with op.batch_alter_table("item_links", schema=None) as batch_op:
        batch_op.drop_index("ix_item_links_target_key")
        batch_op.drop_index("ix_item_links_target_id")

    op.drop_table("item_links")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_updated")
        batch_op.drop_index("ix_items_status_updated")
        batch_op.drop_index("ix_items_source_updated")
        batch_op.drop_index("ix_items_rice")
        batch_op.drop_index("ix_items_parent")
        batch_op.drop_index("ix_items_kind_updated")
        batch_op.drop_index("ix_items_key")
        batch_op.drop_index("ix_items_container_key")
        batch_op.drop_index("ix_items_container")

    op.drop_table("items")
    op.drop_table("cursors")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_item")

    op.drop_table("changes")
    op.drop_table("change_counter")
    op.drop_table("api_keys")
