"""The checked-in contract (contract/) must equal a fresh export: a stale contract fails the build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from infra.cli.streams import register
from infra.streams.contract import check, export

pytestmark = pytest.mark.integration

CONTRACT = Path(__file__).resolve().parents[2] / "contract"


def test_the_checked_in_contract_equals_a_fresh_export() -> None:
    """contract/ is what `dudao schema export contract` writes now; if not, run it and commit the result."""
    assert check(CONTRACT) == [], "the contract is stale: run `dudao schema export contract`"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "contract"
    export(target)
    return target


def test_a_modified_schema_file_is_reported_stale(copy: Path) -> None:
    """Changing one event's schema by hand is detected."""
    path = copy / "dudao.campaign.CampaignStarted.schema.json"
    document = json.loads(path.read_text())
    document["properties"].pop("name")
    path.write_text(json.dumps(document, indent=2))
    assert check(copy) == ["stale: dudao.campaign.CampaignStarted.schema.json"]


def test_a_missing_schema_and_an_extra_schema_are_reported(copy: Path) -> None:
    """A deleted file is `missing`, a schema of an event that does not exist is `extra`."""
    (copy / "dudao.campaign.CampaignRenamed.schema.json").unlink()
    (copy / "dudao.campaign.CampaignDeleted.schema.json").write_text("{}")
    assert check(copy) == ["missing: dudao.campaign.CampaignRenamed.schema.json",
                           "extra: dudao.campaign.CampaignDeleted.schema.json"]


def test_export_removes_schemas_of_events_that_no_longer_exist(copy: Path) -> None:
    """Re-exporting over an old contract leaves exactly the current files (other files untouched)."""
    (copy / "dudao.campaign.CampaignDeleted.schema.json").write_text("{}")
    (copy / "README.md").write_text("keep me")
    export(copy)
    assert check(copy) == [] and (copy / "README.md").exists()


def test_the_cli_schema_check_exits_non_zero_on_a_stale_contract(copy: Path) -> None:
    """`dudao schema check DIR` exits 0 when up to date and 1, naming the file, when stale."""
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    assert runner.invoke(app, ["schema", "check", str(copy)]).exit_code == 0
    shutil.copy(copy / "asyncapi.json", copy / "dudao.campaign.CampaignStarted.schema.json")
    result = runner.invoke(app, ["schema", "check", str(copy)])
    assert result.exit_code == 1 and "stale: dudao.campaign.CampaignStarted.schema.json" in result.output
