"""Which commands must say why (理由): a change of policy, of structure, of responsibility or of an issued record.

Every command may carry a `reason` into its events' envelope (`Meta.reason`); these must. A first
setting is no change, so most rules ask for a reason only when the target already holds what the
command replaces: a policy that already has a version, a scope whose lead is superseded, a bulletin
that corrects an issued one. Moving a unit or place always restructures. (Retiring, revoking,
leaving a unit, transfers, parking and the like already carry a reason of their own in the payload.)
Renames are not listed: a name in force at any time is answered by the as-of views, and a rename is
the cheap write many tests use to stand for "any command".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.consequences.bulletin import DraftBulletin
from domain.escalation.ladder import EscalationPolicy, SetEscalationLadder, SetRankingPolicy
from domain.kernel.base import Command
from domain.policy.campaign import CampaignPolicy
from domain.policy.commands import (ConfigureCategories, SetCalendarDays, SetCategoryRouting, SetDeadlinePolicy,
                                    SetRelapseWindow)
from domain.structure.place import MovePlace
from domain.structure.responsibility import AssignResponsibility, Responsibility
from domain.structure.unit import MoveUnit

ReasonRule = Callable[[Any, Any], bool]  # (command, state of its target or None) -> a reason is required


def always(_cmd: Any, _state: Any) -> bool:
    """A reason is always required."""
    return True


def replaces_a_version(history: str) -> ReasonRule:
    """A reason is required when the policy already has a version in `history` (a new one changes policy)."""

    def rule(_cmd: Any, state: Any) -> bool:
        return state is not None and bool(getattr(state, history, ()))

    rule.__name__ = f"replaces_a_{history}_version"
    return rule


def supersedes_a_lead(cmd: AssignResponsibility, state: Responsibility | None) -> bool:
    """Making a new lead (牵头) while one is in force changes who answers for the scope."""
    return cmd.role == "lead" and state is not None and state.current_lead is not None


def corrects_an_issued_bulletin(cmd: DraftBulletin, _state: Any) -> bool:
    """A bulletin that corrects an issued one changes an issued record."""
    return cmd.corrects is not None


REASON_RULES: dict[type[Command], ReasonRule] = {
    SetEscalationLadder: replaces_a_version("ladders"),
    SetRankingPolicy: replaces_a_version("ranking_policies"),
    SetDeadlinePolicy: replaces_a_version("deadlines"),
    SetRelapseWindow: replaces_a_version("relapse_windows"),
    SetCategoryRouting: replaces_a_version("routings"),
    ConfigureCategories: replaces_a_version("taxonomies"),
    SetCalendarDays: replaces_a_version("calendars"),
    MoveUnit: always,
    MovePlace: always,
    AssignResponsibility: supersedes_a_lead,
    DraftBulletin: corrects_an_issued_bulletin,
}
POLICY_STATES = (EscalationPolicy, CampaignPolicy)  # the states `replaces_a_version` reads


def needs_reason(cmd: Command, state: object | None) -> bool:
    """Whether this command, given its target's state, must carry a reason."""
    rule = REASON_RULES.get(type(cmd))
    return rule is not None and rule(cmd, state)


def has_reason(cmd: Command) -> bool:
    """The command gives a non-blank reason."""
    return bool((cmd.reason or "").strip())
