"""Database engine and sessions (Postgres in production, a SQLite file as the embedded default)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

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


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits nothing by itself and always closes."""
    with Session(get_engine()) as session:
        yield session


def ping_db() -> None:
    """Run a trivial query; raises when the database is unreachable."""
    with session_scope() as session:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
