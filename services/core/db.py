"""Database engine and sessions (Postgres in production, a SQLite file as the embedded default)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, text
from sqlmodel import Session, create_engine

from services.core.settings import get_settings


def private_dir(path: Path) -> Path:
    """A directory, made only-our-user (0700) when missing (an existing one is left as it is)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def private_file(path: Path) -> Path:
    """A file only our user may read (0600), made if missing; SQLite gives its journals the same mode."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)
    return path


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    """One engine per URL, created on first use; a SQLite file is made 0600 in a 0700 directory first."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            database = Path(url.removeprefix("sqlite:///"))
            private_dir(database.parent)
            private_file(database)
        return create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    return create_engine(url, pool_pre_ping=True)


def get_engine() -> Engine:
    """The engine of the configured database."""
    return engine_for(get_settings().sqlalchemy_url())


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits nothing by itself and always closes."""
    with Session(get_engine()) as session:
        yield session


def ping_db() -> None:
    """Run a trivial query; raises when the database is unreachable."""
    with session_scope() as session:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
