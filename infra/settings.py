"""Settings (配置): every DUDAO_* variable, read from the environment in `Settings.from_env` and nowhere else.

A process reads them once at its composition root (a CLI command through `infra.cli.load_settings`,
`python -m infra.streams.relay`, `dudao run` for its children) and passes the values down as
arguments; the HTTP app keeps what its routes need on `app.state`. The README's Configuration table
lists each variable with its default, and a unit test keeps the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """The product defaults, overridden field by field by `from_env`."""

    database_url: str | None = None
    kafka_bootstrap: str | None = None
    kafka_port: int = 9092
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    var_dir: Path = field(default_factory=lambda: Path("var").absolute())
    topic_prefix: str = "dudao"
    log_format: str = "auto"
    command_retries: int = 10
    create_tables: bool = True
    kafka_partitions: int = 3
    relay_batch_size: int = 500
    relay_standby_seconds: float = 1.0
    # The hash chain's digests (infra.audit.digests): the HMAC key (hex or text; unset: <var>/audit.key), its id, how often;
    # the retired keys ("id:key,id:key") still trusted to check digests signed before a rotation.
    audit_key: str | None = None
    audit_key_id: str = "k1"
    audit_retired_keys: str | None = None
    audit_digest_seconds: float = 60.0
    # Store connections (whole seconds, 0 = off): no write waits or holds the events table unboundedly.
    db_lock_timeout_seconds: int = 5
    db_statement_timeout_seconds: int = 30
    db_idle_in_transaction_timeout_seconds: int = 10
    db_connect_timeout_seconds: int = 3
    db_pool_wait_seconds: int = 3
    # 演练模式: start the deployment in drill mode with its shared clock at this instant (infra.clock; None: off).
    drill_clock: datetime | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of this process: each DUDAO_* variable that is set, the default for the rest."""
        e = os.environ if env is None else env
        d = cls()
        return cls(
            database_url=e.get("DUDAO_DATABASE_URL") or d.database_url,
            kafka_bootstrap=e.get("DUDAO_KAFKA_BOOTSTRAP") or d.kafka_bootstrap,
            kafka_port=int(e.get("DUDAO_KAFKA_PORT", d.kafka_port)),
            http_host=e.get("DUDAO_HTTP_HOST", d.http_host),
            http_port=int(e.get("DUDAO_HTTP_PORT", d.http_port)),
            var_dir=Path(e["DUDAO_VAR_DIR"]).absolute() if "DUDAO_VAR_DIR" in e else d.var_dir,
            topic_prefix=e.get("DUDAO_TOPIC_PREFIX", d.topic_prefix),
            log_format=e.get("DUDAO_LOG_FORMAT", d.log_format),
            command_retries=int(e.get("DUDAO_COMMAND_RETRIES", d.command_retries)),
            create_tables=e.get("DUDAO_CREATE_TABLES", "y").lower() not in ("n", "no", "0", "false"),
            kafka_partitions=int(e.get("DUDAO_KAFKA_PARTITIONS", d.kafka_partitions)),
            relay_batch_size=int(e.get("DUDAO_RELAY_BATCH_SIZE", d.relay_batch_size)),
            relay_standby_seconds=float(e.get("DUDAO_RELAY_STANDBY_SECONDS", d.relay_standby_seconds)),
            audit_key=e.get("DUDAO_AUDIT_KEY") or d.audit_key,
            audit_key_id=e.get("DUDAO_AUDIT_KEY_ID", d.audit_key_id),
            audit_retired_keys=e.get("DUDAO_AUDIT_RETIRED_KEYS") or d.audit_retired_keys,
            audit_digest_seconds=float(e.get("DUDAO_AUDIT_DIGEST_SECONDS", d.audit_digest_seconds)),
            db_lock_timeout_seconds=int(e.get("DUDAO_DB_LOCK_TIMEOUT_SECONDS", d.db_lock_timeout_seconds)),
            db_statement_timeout_seconds=int(e.get("DUDAO_DB_STATEMENT_TIMEOUT_SECONDS", d.db_statement_timeout_seconds)),
            db_idle_in_transaction_timeout_seconds=int(e.get("DUDAO_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS",
                                                             d.db_idle_in_transaction_timeout_seconds)),
            db_connect_timeout_seconds=int(e.get("DUDAO_DB_CONNECT_TIMEOUT_SECONDS", d.db_connect_timeout_seconds)),
            db_pool_wait_seconds=int(e.get("DUDAO_DB_POOL_WAIT_SECONDS", d.db_pool_wait_seconds)),
            drill_clock=drill_start(e.get("DUDAO_DRILL_CLOCK")) or d.drill_clock,
        )

    @property
    def kafka_servers(self) -> str:
        """DUDAO_KAFKA_BOOTSTRAP, or the embedded broker's address (`make run`) on DUDAO_KAFKA_PORT."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def uploads_dir(self) -> Path:
        """Where evidence photos are kept: <DUDAO_VAR_DIR>/uploads."""
        return self.var_dir / "uploads"


def drill_start(value: str | None) -> datetime | None:
    """DUDAO_DRILL_CLOCK: an ISO 8601 instant with its offset (a drill clock must not guess a time zone)."""
    if not value:
        return None
    start = datetime.fromisoformat(value.strip())
    if start.tzinfo is None:
        raise ValueError(f"DUDAO_DRILL_CLOCK needs an offset (e.g. 2022-01-03T09:00:00+08:00), not {value!r}")
    return start
