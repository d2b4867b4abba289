"""Alembic environment: the models' metadata, the configured database URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

from services.core.db import get_engine
from services.schema import import_models

import_models()
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    """Emit SQL without a connection (`alembic upgrade --sql`)."""
    context.configure(
        url=str(get_engine().url), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations over a connection (given by the caller, or the configured engine)."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        with get_engine().connect() as own:
            _run(own)
    else:
        _run(connection)


def _run(connection: Connection) -> None:
    # render_as_batch lets column changes work on SQLite, the embedded default.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
