"""Drift check for DuckDB: compare the models with the live schema through DuckDB's catalog.

Alembic's autogenerate cannot reflect a DuckDB database (duckdb-engine's reflection issues
PostgreSQL catalog queries DuckDB does not answer), so on DuckDB we read ``duckdb_columns()``,
``duckdb_constraints()`` and ``duckdb_indexes()`` and compare tables, columns, types,
nullability, primary keys, foreign keys, unique and check constraints, and indexes.
PostgreSQL uses Alembic's own comparison (see :func:`wattledger.migrations.runner.check`).
"""

from __future__ import annotations

import re
from collections import Counter

from sqlalchemy import Connection, MetaData, Table, text
from sqlalchemy.schema import CheckConstraint, ForeignKeyConstraint, UniqueConstraint

IGNORED_TABLES = {"alembic_version"}


def _norm_type(sql_type: str) -> str:
    t = re.sub(r"\s*([(),])\s*", r"\1", sql_type.upper().strip())
    t = re.sub(r"^(VARCHAR|CHAR|TEXT|STRING)(\(\d+\))?$", "VARCHAR", t)
    t = re.sub(r"^NUMERIC", "DECIMAL", t)
    t = t.replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")
    return {"FLOAT8": "DOUBLE", "DOUBLE PRECISION": "DOUBLE", "INT8": "BIGINT"}.get(t, t)


def _applies_to_duckdb(obj: object) -> bool:
    ddl_if = getattr(obj, "_ddl_if", None)
    return ddl_if is None or ddl_if.dialect in (None, "duckdb")


def duckdb_drift(conn: Connection, metadata: MetaData) -> list[str]:
    """Describe every difference between ``metadata`` and the DuckDB schema behind ``conn``."""
    dialect = conn.dialect
    columns: dict[str, dict[str, tuple[str, bool]]] = {}
    for table, column, data_type, nullable in conn.execute(
        text(
            "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE schema_name = 'main' AND NOT internal"
        )
    ):
        columns.setdefault(table, {})[column] = (_norm_type(data_type), bool(nullable))
    constraints: dict[str, Counter[tuple[str, tuple[str, ...]]]] = {}
    fks: dict[str, set[tuple[tuple[str, ...], str]]] = {}
    for table, ctype, ctext, cols in conn.execute(
        text(
            "SELECT table_name, constraint_type, constraint_text, constraint_column_names "
            "FROM duckdb_constraints() WHERE schema_name = 'main'"
        )
    ):
        if ctype == "FOREIGN KEY":
            referred = re.search(r"REFERENCES\s+\"?(\w+)\"?", ctext)
            fks.setdefault(table, set()).add((tuple(cols), referred.group(1) if referred else ""))
        elif ctype in ("PRIMARY KEY", "UNIQUE", "CHECK"):
            key = tuple(sorted(set(cols))) if ctype == "CHECK" else tuple(cols)
            constraints.setdefault(table, Counter())[(ctype, key)] += 1
    indexes: dict[str, set[str]] = {}
    for name, table in conn.execute(
        text("SELECT index_name, table_name FROM duckdb_indexes() WHERE schema_name = 'main'")
    ):
        indexes.setdefault(table, set()).add(name)

    problems: list[str] = []
    model_tables = {t.name: t for t in metadata.sorted_tables}
    for name in sorted(set(columns) - set(model_tables) - IGNORED_TABLES):
        problems.append(f"table {name} is in the database but not in the models")
    for name, table in model_tables.items():
        if name not in columns:
            problems.append(f"table {name} is in the models but not in the database")
            continue
        problems += _compare_table(
            table,
            columns[name],
            constraints.get(name, Counter()),
            fks.get(name, set()),
            indexes.get(name, set()),
            dialect,
        )
    return problems


def _compare_table(
    table: Table,
    live_cols: dict[str, tuple[str, bool]],
    live_cons: Counter[tuple[str, tuple[str, ...]]],
    live_fks: set[tuple[tuple[str, ...], str]],
    live_ix: set[str],
    dialect: object,
) -> list[str]:
    out: list[str] = []
    name = table.name
    for col in table.columns:
        if col.name not in live_cols:
            out.append(f"column {name}.{col.name} is in the models but not in the database")
            continue
        live_type, live_null = live_cols[col.name]
        model_type = _norm_type(col.type.compile(dialect=dialect))  # type: ignore[arg-type]
        if live_type != model_type:
            out.append(
                f"column {name}.{col.name} is {live_type} in the database, "
                f"{model_type} in the models"
            )
        if live_null != col.nullable:
            out.append(
                f"column {name}.{col.name} nullable={live_null} in the database, "
                f"nullable={col.nullable} in the models"
            )
    for extra in sorted(set(live_cols) - {c.name for c in table.columns}):
        out.append(f"column {name}.{extra} is in the database but not in the models")
    want: Counter[tuple[str, tuple[str, ...]]] = Counter()
    want[("PRIMARY KEY", tuple(c.name for c in table.primary_key.columns))] += 1
    want_fks: set[tuple[tuple[str, ...], str]] = set()
    for con in table.constraints:
        if isinstance(con, UniqueConstraint):
            want[("UNIQUE", tuple(c.name for c in con.columns))] += 1
        elif isinstance(con, CheckConstraint):
            cols = tuple(
                sorted(
                    {
                        c
                        for c in re.findall(r"\b[a-z_][a-z0-9_]*\b", str(con.sqltext))
                        if c in live_cols
                    }
                )
            )
            want[("CHECK", cols)] += 1
        elif isinstance(con, ForeignKeyConstraint):
            want_fks.add((tuple(c.name for c in con.columns), con.referred_table.name))
    for key in sorted(set(want) | set(live_cons)):
        if want[key] != live_cons[key]:
            kind, cols = key
            out.append(
                f"{kind} on {name}({', '.join(cols)}): {live_cons[key]} in the database, "
                f"{want[key]} in the models"
            )
    for cols, referred in sorted(want_fks ^ live_fks):
        where = "models" if (cols, referred) in want_fks else "database"
        out.append(f"FOREIGN KEY {name}({', '.join(cols)}) -> {referred} only in the {where}")
    want_ix = {str(ix.name) for ix in table.indexes if _applies_to_duckdb(ix)}
    for ix in sorted(want_ix ^ live_ix):
        where = "models" if ix in want_ix else "database"
        out.append(f"index {ix} on {name} only in the {where}")
    return out
