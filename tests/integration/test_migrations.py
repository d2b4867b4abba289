"""The migrations and the models agree, and upgrading is idempotent."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from services.core.db import get_engine
from services.schema import import_models, init_db

pytestmark = pytest.mark.integration


def test_models_need_no_new_migration(postgres_db: str) -> None:
    import_models()
    with get_engine().connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], "models changed without a migration: python -m services.make_migration '...'"


def test_upgrade_twice_is_a_no_op(postgres_db: str) -> None:
    init_db()
    init_db()
    with get_engine().connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() is not None
