"""Alembic's script directory for the hub's database (run through hub/store/migrate.py)."""
