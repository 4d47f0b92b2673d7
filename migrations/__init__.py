"""Alembic migrations for the warehouse, shipped in the wheel and run by ``wattledger db``.

Use :mod:`wattledger.migrations.runner` rather than the ``alembic`` command: it points Alembic at
these scripts and builds the engine the way the rest of wattledger does (UTC, DuckDB support).
"""
