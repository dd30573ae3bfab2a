"""Alembic environment: runs on the engine the hub hands over (see hub.db.engine.migrate)."""

from alembic import context

from hub.db.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` CLI use: build the engine from the hub's settings
    from hub.db.engine import make_engine
    from hub.settings import get_settings

    engine = make_engine(get_settings().database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
