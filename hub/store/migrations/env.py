"""Alembic's environment, configured by hub/store/migrate.py (there is no alembic.ini).

Online, the caller hands over a synchronous connection that is already inside its
transaction (``config.attributes["connection"]``, from ``AsyncConnection.run_sync``), so
the revision check and the upgrade happen under one lock. Offline (``--sql``), the SQL is
rendered for the URL's dialect.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from hub.store.tables import UTCDateTime, metadata

config = context.config


def _include_name(name: str | None, type_: str, _parent: Any) -> bool:
    # Alembic's own bookkeeping table is not part of the hub's schema.
    return not (type_ == "table" and name == "alembic_version")


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # UTCDateTime converts values in Python only; the column is DateTime(timezone=True).
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        include_name=_include_name,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=_include_name,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
