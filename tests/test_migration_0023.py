"""Migration 0023 (issue 13, the worker): the inbox's headers and body move to
`webhook_inbox_bodies`. Deliveries stored before it (pending, done, dead) are claimed with their
headers and body after it, and replayed; the downgrade puts them back in the inbox rows."""

from __future__ import annotations

from datetime import timedelta

import orjson
from alembic import command
from sqlalchemy import Engine, Integer, LargeBinary, String, Text, column, delete, insert, select, table, text

from hub.db.engine import alembic_config, migrate, schema_status
from hub.db.tables import UTCDateTime, webhook_inbox, webhook_inbox_bodies
from hub.store import Store
from hub.store.clock import utcnow
from hub.store.inbox import DEAD, DONE, PENDING, InboxStore
from tests.conftest import reset_database

# webhook_inbox as it was at 0022 (headers and body in the row).
OLD_INBOX = table(
    "webhook_inbox",
    column("source", String),
    column("delivery_id", String),
    column("received_at", UTCDateTime),
    column("headers", Text),
    column("body", LargeBinary),
    column("status", String),
    column("attempts", Integer),
)

STORED = {
    "d-pending": (
        PENDING,
        {"x-atlassian-webhook-identifier": "d-pending"},
        b'{"n": 1, "text": "' + b"x" * 6000 + b'"}',
    ),
    "d-done": (DONE, {"content-type": "application/json"}, b'{"n": 2}'),
    "d-dead": (DEAD, {}, b'{"n": 3}'),
}


def old_bodies(engine: Engine) -> dict[str, tuple[dict[str, str], bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT delivery_id, headers, body FROM webhook_inbox"))
        return {d: (orjson.loads(h), bytes(b)) for d, h, b in rows}


def test_0023_moves_stored_bodies_so_old_deliveries_are_claimed_and_replayed(store: Store) -> None:
    reset_database(store)
    engine = store.engine
    command.downgrade(alembic_config(engine), "0022")
    received = utcnow() - timedelta(minutes=5)
    with engine.begin() as conn:
        conn.execute(
            insert(OLD_INBOX),
            [
                {
                    "source": "acme-jira",
                    "delivery_id": d,
                    "received_at": received,
                    "headers": orjson.dumps(h).decode(),
                    "body": b,
                    "status": status,
                    "attempts": 8 if status == DEAD else 1 if status == DONE else 0,
                }
                for d, (status, h, b) in STORED.items()
            ],
        )
    migrate(engine)
    assert schema_status(engine)[0] == schema_status(engine)[1]
    with engine.connect() as conn:
        assert len(conn.execute(select(webhook_inbox_bodies.c.id)).all()) == 3
        ids = dict(conn.execute(select(webhook_inbox.c.delivery_id, webhook_inbox.c.id)).all())

    inbox = InboxStore(engine)
    (pending,) = inbox.claim(10)
    assert (pending.delivery_id, pending.headers, pending.body) == ("d-pending", *STORED["d-pending"][1:])
    assert inbox.replay(ids["d-done"]).status == PENDING
    assert inbox.replay_dead("acme-jira") == 1
    replayed = {d.delivery_id: d for d in inbox.claim(10)}
    assert {d: (r.headers, r.body) for d, r in replayed.items()} == {d: STORED[d][1:] for d in ("d-done", "d-dead")}

    command.downgrade(alembic_config(engine), "0022")  # the bodies go back into the inbox rows
    assert old_bodies(engine) == {d: (h, b) for d, (_, h, b) in STORED.items()}
    migrate(engine)
    assert schema_status(engine)[0] == schema_status(engine)[1]
    with engine.begin() as conn:  # a row deleted by hand takes its body with it (the next id may be its)
        conn.execute(delete(webhook_inbox).where(webhook_inbox.c.delivery_id == "d-pending"))
        assert len(conn.execute(select(webhook_inbox_bodies.c.id)).all()) == 2
