"""API key store: create / verify / revoke / list; only a hash of the secret is stored."""

from __future__ import annotations

from sqlalchemy import select, update

from hub.db.tables import api_keys
from hub.store import Store
from hub.store.keys import Scope


def test_create_verify_list_revoke(store: Store) -> None:
    read_key, read_token = store.keys.create(Scope.read, name="dashboards")
    admin_key, admin_token = store.keys.create(Scope.admin)
    assert read_token.startswith(f"ohk_{read_key.id}_")
    assert read_token != admin_token

    verified = store.keys.verify(read_token)
    assert verified is not None
    assert (verified.id, verified.scope, verified.name) == (read_key.id, Scope.read, "dashboards")
    assert verified.last_used_at is not None
    admin = store.keys.verify(admin_token)
    assert admin is not None
    assert admin.scope is Scope.admin

    listed = {k.id: k for k in store.keys.list()}
    assert set(listed) == {read_key.id, admin_key.id}
    assert listed[read_key.id].last_used_at is not None  # verify recorded the use
    assert listed[read_key.id].revoked_at is None

    assert store.keys.revoke(read_key.id) is True
    assert store.keys.revoke(read_key.id) is False  # already revoked
    assert store.keys.revoke("nope") is False
    assert store.keys.verify(read_token) is None
    assert store.keys.verify(admin_token) is not None
    revoked = next(k for k in store.keys.list() if k.id == read_key.id)
    assert revoked.revoked_at is not None


def test_wrong_or_malformed_tokens_are_rejected(store: Store) -> None:
    key, token = store.keys.create(Scope.read)
    secret = token.split("_", 2)[2]
    for bad in (
        "",
        "garbage",
        f"ohk_{key.id}",
        f"ohk_{key.id}_{secret}x",
        f"ohk_{key.id}_{secret[:-1]}",
        f"xyz_{key.id}_{secret}",
        f"ohk_deadbeef0000_{secret}",
        token.upper(),
    ):
        assert store.keys.verify(bad) is None, bad
    assert store.keys.verify(token) is not None


def test_only_the_hash_is_stored(store: Store) -> None:
    _key, token = store.keys.create(Scope.admin, name="ci")
    secret = token.split("_", 2)[2]
    with store.engine.connect() as conn:
        row = conn.execute(select(api_keys)).mappings().one()
    stored = " ".join(str(value) for value in row.values())
    assert secret not in stored
    assert token not in stored
    assert row["secret_hash"] != secret
    assert len(row["secret_hash"]) == 64


def test_last_used_is_touched_at_most_once_a_minute(store: Store) -> None:
    _key, token = store.keys.create(Scope.read)
    first = store.keys.verify(token)
    assert first is not None
    with store.engine.connect() as conn:
        stamped = conn.execute(select(api_keys.c.last_used_at)).scalar_one()
    store.keys.verify(token)
    with store.engine.connect() as conn:
        assert conn.execute(select(api_keys.c.last_used_at)).scalar_one() == stamped
    # An old stamp is refreshed.
    with store.engine.begin() as conn:
        conn.execute(update(api_keys).values(last_used_at=stamped.replace(year=2020)))
    store.keys.verify(token)
    with store.engine.connect() as conn:
        assert conn.execute(select(api_keys.c.last_used_at)).scalar_one() > stamped.replace(year=2020)
