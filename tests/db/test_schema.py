"""The migrated schema equals the models, and SQLite runs with the durable pragmas."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from server.db.models import Base


def test_migrations_match_models(app):
    engine = app.extensions["db"].engine
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(app):
    app.extensions["db"].upgrade()  # already at head: nothing to do, nothing breaks
    with app.extensions["db"].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM projects")).scalar() == 0


def test_sqlite_pragmas(app):
    engine = app.extensions["db"].engine
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_every_migration_goes_down_and_up(app):
    from alembic import command

    from server.db import alembic_config

    db = app.extensions["db"]
    for target, step in (("base", command.downgrade), ("head", command.upgrade)):
        with db.engine.begin() as conn:
            cfg = alembic_config(db.url)
            cfg.attributes["connection"] = conn
            step(cfg, target)
    test_migrations_match_models(app)
