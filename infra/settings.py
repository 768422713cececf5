"""Settings read from the environment (DUDAO_*). Only infra/bootstrap.py and the CLI read them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    kafka_bootstrap: str | None
    kafka_port: int
    http_host: str
    http_port: int
    var_dir: Path
    topic_prefix: str
    log_format: str
    command_retries: int
    create_tables: bool

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            database_url=e.get("DUDAO_DATABASE_URL") or None,
            kafka_bootstrap=e.get("DUDAO_KAFKA_BOOTSTRAP") or None,
            kafka_port=int(e.get("DUDAO_KAFKA_PORT", "9092")),
            http_host=e.get("DUDAO_HTTP_HOST", "127.0.0.1"),
            http_port=int(e.get("DUDAO_HTTP_PORT", "8000")),
            var_dir=Path(e.get("DUDAO_VAR_DIR", "var")).absolute(),
            topic_prefix=e.get("DUDAO_TOPIC_PREFIX", "dudao"),
            log_format=e.get("DUDAO_LOG_FORMAT", "auto"),
            command_retries=int(e.get("DUDAO_COMMAND_RETRIES", "10")),
            create_tables=e.get("DUDAO_CREATE_TABLES", "y").lower() not in ("n", "no", "0", "false"),
        )
