"""Databases for the integration tests: a schema template built once, cloned per test in a fraction of the time.

Building the whole schema (event store, command receipts, every projection's tables, the tokens table) took
a test longer than the test itself; `CREATE DATABASE … TEMPLATE` copies a built one instead. The template
holds exactly what `bootstrap(create_tables=True)` and the HTTP app create at start-up, nothing more: what
the relay, the escalator and the consumers create for themselves when they first run is left to them, so a
test still sees that path (and e.g. `dudao status` before any relay ran still finds no relay table).
PostgreSQL refuses to copy a database anyone is connected to, so the template is closed to connections once
built. Tests about a brand-new installation take a blank database instead.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def with_dbname(url: str, name: str) -> str:
    """The same server DSN, pointing at database `name`."""
    params: dict[str, Any] = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)


def build_schema(database_url: str) -> None:
    """Run the real start-up DDL against `database_url`: bootstrap's tables, then the HTTP app's tokens table."""
    from infra.bootstrap import bootstrap
    from infra.http.auth import ensure_tokens_table

    system = bootstrap(database_url, create_tables=True, pool_size=1)
    system.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_tokens_table(conn)


@dataclass
class Databases:
    """Makes uniquely named databases on one server: clones of the schema template, copies of any closed
    database, or blank ones. Names carry the process id, so pytest-xdist workers sharing a server never clash."""

    server_url: str
    template: str | None = None
    _counter: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    def _name(self, stem: str) -> str:
        return f"{stem}{os.getpid()}_{next(self._counter)}"

    def _create(self, name: str, template: str) -> str:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
        return with_dbname(self.server_url, name)

    def build_template(self) -> None:
        """Create the schema template (once) and close it to connections, so it can be cloned at any time."""
        name = self._name("dudao_template")
        url = self._create(name, "template0")
        build_schema(url)
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
        self.template = name

    def drop_template(self) -> None:
        if self.template is not None:
            with psycopg.connect(self.server_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.template)))
            self.template = None

    def clone(self, stem: str = "t") -> str:
        """A DSN to a new database with the whole schema and no rows."""
        assert self.template is not None, "build_template() first"
        return self._create(self._name(stem), self.template)

    def copy(self, database_url: str, stem: str = "copy") -> str:
        """A DSN to a new database equal to the one at `database_url` (which nobody may be connected to)."""
        return self._create(self._name(stem), str(conninfo_to_dict(database_url)["dbname"]))

    def drop(self, database_url: str) -> None:
        """Drop a test's database once the test is over, closing any connection left to it (a test that failed
        midway may leave some), so a run's databases do not pile up on the server (one per test, 9 MB each)."""
        name = str(conninfo_to_dict(database_url)["dbname"])
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def blank(self, stem: str = "blank") -> str:
        """A DSN to a new database with no tables at all, as on a brand-new installation."""
        return self._create(self._name(stem), "template0")
