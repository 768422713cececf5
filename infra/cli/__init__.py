"""The `dudao` command line: one module per group of sub-commands, wired in `main`.

Each command is a composition root: it reads its settings once, through `load_settings`, and passes
them down; nothing below it reads the environment.
"""

from __future__ import annotations

from infra.settings import Settings


def load_settings(*, configure_logs: bool = False) -> Settings:
    """This command's settings from the DUDAO_* environment; with `configure_logs`, logging set up from them."""
    settings = Settings.from_env()
    if configure_logs:
        from infra.logging import configure_logging

        configure_logging(settings.log_format)
    return settings
