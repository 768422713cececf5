"""Shared rules of the command structure (指挥体系): units, places and people.

Units (单位) and places (区域/点位) are trees: each node may have a parent of its own kind in the
same campaign. The rules here are the ones both trees share — the campaign exists, the parent
exists, belongs to the same campaign and is active, and a new parent never makes a cycle — plus
the limits every name, reason and note obeys at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from domain.kernel.base import CommandContext, Conflict, DomainError, DomainEvent, Meta, NotFound
from domain.kernel.text import Name, Text, free_text

Title = Name
Reason = Annotated[str, free_text(1000)]
Note = Text


@dataclass(frozen=True)
class TreeRefs:
    """What a register/move decision reads besides its own node.

    `campaign`: the campaign's state (None when it does not exist; unused by moves).
    `parent`: the new parent's state (None when there is none or it does not exist).
    `lineage`: the new parent's id followed by the ids of its ancestors, nearest first.
    """

    campaign: Any = None
    parent: Any = None
    lineage: tuple[UUID, ...] = ()


def meta_for(ctx: CommandContext, campaign_id: UUID) -> Meta:
    """The command's envelope, stamped with the campaign the touched node belongs to."""
    if ctx.meta.campaign_id == campaign_id:
        return ctx.meta
    return ctx.meta.model_copy(update={"campaign_id": campaign_id})


def creates_cycle(node_id: UUID, lineage: tuple[UUID, ...]) -> bool:
    """A node placed under a parent whose lineage contains the node itself would be its own ancestor."""
    return node_id in lineage


def require_campaign(campaign: Any, campaign_id: UUID) -> None:
    if campaign is None:
        raise NotFound("campaign_not_found", "创建活动不存在", "campaign not found", campaign_id=str(campaign_id))


def require_new(state: Any, what_zh: str, what_en: str, node_id: UUID) -> None:
    if state is not None:
        raise Conflict("already_exists", f"{what_zh}已存在", f"{what_en} already exists", id=str(node_id))


def require_existing(state: Any, code: str, what_zh: str, what_en: str, node_id: UUID) -> Any:
    if state is None:
        raise NotFound(code, f"{what_zh}不存在", f"{what_en} not found", id=str(node_id))
    return state


def require_active(state: Any, what_zh: str, what_en: str, node_id: UUID) -> None:
    """A retired (撤销) node accepts no rename, move or membership change."""
    if state.retired:
        raise DomainError("retired", f"{what_zh}已撤销，不能再变更", f"the {what_en} is retired", id=str(node_id))


def require_same_campaign(other: Any, campaign_id: UUID, other_id: UUID) -> None:
    if other.campaign_id != campaign_id:
        raise DomainError(
            "wrong_campaign", "不属于同一创建活动", "belongs to another campaign",
            id=str(other_id), campaign_id=str(campaign_id), other_campaign_id=str(other.campaign_id),
        )


def check_parent(node_id: UUID, parent_id: UUID | None, campaign_id: UUID, refs: TreeRefs) -> None:
    """The parent exists, is in the same campaign, is active, and is not the node or its descendant."""
    if parent_id is None:
        return
    parent = refs.parent
    if parent is None:
        raise NotFound("parent_not_found", "上级不存在", "parent not found", parent_id=str(parent_id))
    require_same_campaign(parent, campaign_id, parent_id)
    if parent.retired:
        raise DomainError("parent_retired", "上级已撤销", "the parent is retired", parent_id=str(parent_id))
    if creates_cycle(node_id, refs.lineage):
        raise DomainError(
            "cycle", "不能把节点挂到其自身或下级之下", "the move would make the node its own ancestor",
            id=str(node_id), parent_id=str(parent_id),
        )


def require_kind(kind: str, event: DomainEvent) -> None:
    """An id loaded as one kind but holding another kind's history is a conflict, not a crash."""
    if event.kind != kind:
        raise Conflict(
            "id_kind_mismatch", "该编号属于另一类对象", f"this id belongs to a {event.kind}, not a {kind}",
            expected=kind, found=event.kind,
        )
