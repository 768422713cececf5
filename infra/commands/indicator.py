"""Handlers for indicator (测评指标) commands (tasks have their own module, infra/commands/tasks.py)."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from domain.structure import indicator as i
from domain.structure.campaign import Campaign
from domain.kernel.base import Conflict
from domain.kernel.roles import HQ_ROLES
from infra.commands import Handler, Reader, register
from infra.commands.references import TARGET, Of

S = TypeVar("S")


def get_of_kind(reader: Reader, kind: str, aggregate_id: UUID, state_type: type[S]) -> S | None:
    """The state of an aggregate of `kind`, or None when the id is unknown or belongs to another kind."""
    try:
        return reader.get(kind, aggregate_id, state_type)
    except Conflict as err:
        if err.code == "id_kind_mismatch":
            return None
        raise


def gather_indicator(cmd: i.DefineIndicator, reader: Reader) -> i.IndicatorRefs:
    parent = get_of_kind(reader, "indicator", cmd.parent_id, i.Indicator) if cmd.parent_id else None
    return i.IndicatorRefs(campaign_exists=reader.get("campaign", cmd.campaign_id, Campaign) is not None, parent=parent)


register(
    Handler(i.DefineIndicator, "indicator", lambda cmd: cmd.indicator_id, i.define_indicator, gather_indicator,
            HQ_ROLES, refs={"indicator_id": TARGET, "parent_id": Of("indicator")}),
)
