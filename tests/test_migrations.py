"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from callrouter import db
from callrouter.models import Base


def test_migrated_schema_matches_models(database_url, tmp_path):
    """Autogenerate finds no difference between the migrated database and the models."""
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine, tmp_path)
        db.upgrade(engine, tmp_path)  # a second run is a no-op
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()
