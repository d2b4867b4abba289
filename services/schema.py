"""The schema: every store's tables and the migrations that build them (`init_db`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from services.core.db import get_engine
from services.core.file_lock import exclusive

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 724_011  # pg_advisory_xact_lock key: one process migrates at a time


def import_models() -> None:
    """Import every module that defines tables, so the metadata knows them all."""
    import services.audit.models
    import services.jobs.census
    import services.jobs.models
    import services.metrics.models
    import services.snapshots.models
    import services.subscriptions.models  # noqa: F401  (registers the tables)


def alembic_config() -> Config:
    """Alembic's configuration, pointing at the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def init_db() -> None:
    """Bring the database schema to the latest migration (idempotent; concurrent starts wait their turn:
    Postgres by an advisory lock, the embedded SQLite file by a lock file beside it)."""
    engine = get_engine()
    with _sqlite_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on `<database>.migrate.lock` for a SQLite file (the API and a worker started
    together both migrate a fresh one); nothing for other databases."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with exclusive(Path(f"{database}.migrate.lock")):
        yield
