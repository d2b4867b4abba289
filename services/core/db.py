"""Database engine and sessions (Postgres in production, a SQLite file as the embedded default)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlmodel import Session, create_engine

from services.core.settings import get_settings


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    """One engine per URL, created on first use."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    return create_engine(url, pool_pre_ping=True)


def get_engine() -> Engine:
    """The engine of the configured database."""
    settings = get_settings()
    url = settings.sqlalchemy_url()
    if url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return engine_for(url)


MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 724_011  # pg_advisory_xact_lock key: one process migrates at a time


def import_models() -> None:
    """Import every module that defines tables, so the metadata knows them all."""
    import services.audit.models
    import services.jobs.models
    import services.metrics.models
    import services.subscriptions.models  # noqa: F401  (registers the tables)


def alembic_config() -> Config:
    """Alembic's configuration, pointing at the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def init_db() -> None:
    """Bring the database schema to the latest migration (idempotent; concurrent starts wait their turn)."""
    engine = get_engine()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits nothing by itself and always closes."""
    with Session(get_engine()) as session:
        yield session


def ping_db() -> None:
    """Run a trivial query; raises when the database is unreachable."""
    with session_scope() as session:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
