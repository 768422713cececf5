"""Row changes gathered over a batch of events and written with one statement per table and kind of change.

Why: a projection that sends a statement per event waits a round trip per event, which held a rebuild of
the structure read model to a few thousand events a second when the log reads and decodes at over a
hundred thousand. Here the effect of each per-event statement is played in memory instead, and the
batch's net changes go in as arrays (`unnest`): one round trip per table, sent whole (psycopg's pipeline
mode, which `executemany` uses, can stall on a statement larger than the socket buffer; see
infra/store/event_store.py).

The rules that keep the rows identical to applying the events one by one:
- a row inserted in the batch takes the batch's later updates in memory and is inserted once, as it ends;
- an update of a row not inserted in the batch is a patch, the last value per column winning; patches are
  written before the inserts, because an update that came before the row's insert found no row;
- two inserts of one key in one batch raise `InBatchConflict`, so the projector applies the batch event by
  event and the second insert fails where it always did (a dead letter names it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from psycopg import Cursor
from psycopg.types.json import Jsonb

ARRAY_OF_TEXT = "text[]"  # passed as jsonb (unnest would flatten a two-dimensional text array)


class InBatchConflict(Exception):
    """One batch inserts a key twice (or meets one already there): only event-by-event application says which fails."""


def insert_rows(curs: Cursor[Any], table: str, columns: Mapping[str, str], rows: Iterable[Mapping[str, Any]],
                conflict: str = "") -> None:
    """`INSERT INTO table (columns) SELECT ... FROM unnest(...)` of rows with distinct keys; `columns` maps each
    column to its SQL type (names and types come from the projections' modules, never from event data)."""
    rows = list(rows)
    if not rows:
        return
    names = list(columns)
    params: list[list[Any]] = []
    arrays, selects = [], []
    for i, name in enumerate(names):
        values = [row[name] for row in rows]
        if columns[name] == ARRAY_OF_TEXT:
            arrays.append("%b::jsonb[]")
            selects.append(f"ARRAY(SELECT jsonb_array_elements_text(u.c{i}))")
            values = [None if v is None else Jsonb(list(v)) for v in values]
        else:
            arrays.append(f"%b::{columns[name]}[]")
            selects.append(f"u.c{i}")
        params.append(values)
    aliases = ", ".join(f"c{i}" for i in range(len(names)))
    # No ORDER BY: callers never insert one key twice in a statement, so the order of the rows changes nothing (and
    # sorting a batch of wide rows spilled to disk).
    curs.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(selects)}"
                 f" FROM unnest({', '.join(arrays)}) AS u({aliases}) {conflict}", params)


def copy_rows(curs: Cursor[Any], table: str, columns: Mapping[str, str], rows: Iterable[Mapping[str, Any]]) -> None:
    """COPY rows into `table` (binary): the cheapest way in, for rows that must all be new. A key already there fails
    the COPY, and with it the batch, which the projector then applies event by event, as `apply` does."""
    names = list(columns)
    with curs.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([columns[n] for n in names])
        for row in rows:
            copy.write_row([row[n] for n in names])


def update_column(curs: Cursor[Any], table: str, key: str, key_type: str, column: str, column_type: str,
                  values: Mapping[Any, Any]) -> None:
    """`UPDATE table SET column = value WHERE key = k` for every (k, value), in one statement (keys distinct)."""
    if not values:
        return
    if column_type == ARRAY_OF_TEXT:
        value, array = "ARRAY(SELECT jsonb_array_elements_text(u.v))", "%b::jsonb[]"
        new = [None if v is None else Jsonb(list(v)) for v in values.values()]
    else:
        value, array, new = "u.v", f"%b::{column_type}[]", list(values.values())
    curs.execute(f"UPDATE {table} SET {column} = {value} FROM unnest(%b::{key_type}[], {array}) AS u(k, v)"
                 f" WHERE {table}.{key} = u.k", (list(values), new))


class Keyed:
    """One table's changes over a batch, for rows keyed by one column: inserts (no conflict expected) and updates."""

    def __init__(self, table: str, key: str, columns: Mapping[str, str], defaults: Mapping[str, Any] | None = None) -> None:
        self.table, self.key, self.columns = table, key, dict(columns)
        self.defaults = dict(defaults or {})
        self.inserted: dict[Any, dict[str, Any]] = {}
        self.patches: dict[str, dict[Any, Any]] = {}  # column → key → value

    def insert(self, **row: Any) -> None:
        key = row[self.key]
        if key in self.inserted:
            raise InBatchConflict(f"{self.table}: {key} inserted twice in one batch")
        self.inserted[key] = {**self.defaults, **row}

    def update(self, key: Any, **changes: Any) -> None:
        row = self.inserted.get(key)
        if row is not None:
            row.update(changes)
            return
        for column, value in changes.items():
            self.patches.setdefault(column, {})[key] = value

    def flush(self, curs: Cursor[Any]) -> None:
        for column, values in self.patches.items():
            update_column(curs, self.table, self.key, self.columns[self.key], column, self.columns[column], values)
        insert_rows(curs, self.table, self.columns, self.inserted.values())
        self.inserted, self.patches = {}, {}
