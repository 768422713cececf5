"""Settings (配置) have one home: `Settings.from_env` reads every DUDAO_* variable, the README lists each."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from infra.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = ROOT / "infra" / "settings.py"
VARIABLE = re.compile(r"DUDAO_[A-Z_]+\b(?!\*)")  # not a pattern such as DUDAO_DB_*_SECONDS
# Variables that configure something other than a product process: the tests' own server, and the
# token `dudao command` acts with (a typer option's envvar, never a setting).
NOT_SETTINGS = {"DUDAO_TEST_DATABASE_URL", "DUDAO_TOKEN"}


def readme_variables() -> set[str]:
    """The variables in the first column of the README's Configuration table."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\| `(DUDAO_[A-Z_]+)` \|", section, re.MULTILINE)}


def source_files() -> list[Path]:
    return [p for package in ("domain", "projections", "consumers", "infra") for p in sorted((ROOT / package).rglob("*.py"))]


def environment_reads(path: Path) -> list[int]:
    """Lines of `path` that read the environment: os.environ.get / [...] / getenv (copying it whole is not reading)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in ("get", "getenv") and (
                node.attr == "getenv" or isinstance(node.value, ast.Attribute) and node.value.attr == "environ"):
            lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "environ":
            lines.append(node.lineno)
    return lines


def test_the_readme_table_lists_exactly_the_variables_settings_reads() -> None:
    """Every variable `from_env` reads has a README row, and every README row is read (or is not a setting)."""
    read = set(VARIABLE.findall(SETTINGS_MODULE.read_text(encoding="utf-8")))
    assert read and readme_variables() == read | NOT_SETTINGS


def variables_named(path: Path) -> set[str]:
    """The DUDAO_* names in the strings of `path` (docstrings and typer envvars too; identifiers are not variables)."""
    return {v for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) for v in VARIABLE.findall(node.value)}


def test_every_variable_named_anywhere_in_the_code_is_in_the_readme() -> None:
    """A DUDAO_* name in any module's strings (docstrings and typer envvars too) is one the README explains."""
    named = {v for path in source_files() for v in variables_named(path)}
    assert "DUDAO_TOKEN" in named and named - readme_variables() == set()


def test_no_module_but_settings_reads_the_environment() -> None:
    """Processes get their settings from `Settings.from_env` at the composition root, not from os.environ."""
    found = {str(p.relative_to(ROOT)): lines for p in source_files() if p != SETTINGS_MODULE
             and (lines := environment_reads(p))}
    assert found == {}


def test_each_variable_overrides_its_default_and_unset_ones_keep_it() -> None:
    """Set variables are parsed into their fields; the others keep the product default."""
    env = {"DUDAO_DATABASE_URL": "postgresql://db/dudao", "DUDAO_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
           "DUDAO_KAFKA_PORT": "19092", "DUDAO_HTTP_HOST": "0.0.0.0", "DUDAO_HTTP_PORT": "8080",
           "DUDAO_VAR_DIR": "/srv/dudao", "DUDAO_TOPIC_PREFIX": "city", "DUDAO_LOG_FORMAT": "json",
           "DUDAO_COMMAND_RETRIES": "3", "DUDAO_CREATE_TABLES": "n", "DUDAO_KAFKA_PARTITIONS": "12",
           "DUDAO_RELAY_BATCH_SIZE": "50", "DUDAO_RELAY_STANDBY_SECONDS": "0.5"}
    assert Settings.from_env(env) == Settings(
        database_url="postgresql://db/dudao", kafka_bootstrap="k1:9092,k2:9092", kafka_port=19092,
        http_host="0.0.0.0", http_port=8080, var_dir=Path("/srv/dudao"), topic_prefix="city", log_format="json",
        command_retries=3, create_tables=False, kafka_partitions=12, relay_batch_size=50, relay_standby_seconds=0.5)
    assert Settings.from_env({}) == Settings()
    assert Settings().kafka_servers == "127.0.0.1:9092" and Settings().uploads_dir == Path("var/uploads").absolute()
