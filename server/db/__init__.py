"""Persistence: engine, sessions, schema migrations. The only package that imports SQLAlchemy."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from server.db.engine import make_engine, make_sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine: Engine = make_engine(url)
        self._reader = make_sessionmaker(self.engine, write=False)
        self._writer = make_sessionmaker(self.engine, write=True)

    def session(self, *, write: bool = False) -> Session:
        return (self._writer if write else self._reader)()

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest migration."""
        with self.engine.begin() as conn:
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar() == 1

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
