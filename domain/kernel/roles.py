"""Roles (角色): every role an actor may act in, what each may do, and the groups the rules check.

The one home of role names: the domain's decisions, the command handlers and the HTTP API all
import from here, so "who may do what" cannot disagree between layers. A role that no write
group names is read-only (只读): `auditor` (督查室/审计) reads everything and writes nothing;
`discipline` (纪委监委) proposes, opens, decides and closes 问责 cases.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.kernel.base import Actor, Forbidden


@dataclass(frozen=True)
class Role:
    """One role: its identifier, its Chinese name and, in one line, what it may do."""

    name: str
    name_zh: str
    may: str


CATALOGUE: tuple[Role, ...] = (
    Role("admin", "系统管理员", "technical operator: campaigns, structure, policies, notices, bulletins, 约谈; decides no case"),
    Role("hq_office", "总指挥部办公室", "structure and policy, 交办/转办, notices, 通报, escalation steps, 约谈; proposes, "
                                       "opens and closes 问责"),
    Role("hq_leader", "总指挥长", "decides 问责 measures and appeals, closes cases"),
    Role("supervisor", "督导组成员", "logs visits and problems, verifies (复查) rectifications"),
    Role("leader", "挂钩领导", "logs visits and problems, verifies (复查) rectifications"),
    Role("unit_head", "责任单位负责人", "签收, rectifies, asks for transfer, coordination or extension for its unit"),
    Role("unit_officer", "责任单位经办人", "签收, rectifies, asks for transfer, coordination or extension for its unit"),
    Role("auditor", "督查室/审计", "reads everything, writes nothing"),
    Role("discipline", "纪委监委", "proposes, opens, decides and closes 问责; schedules and holds 约谈"),
    Role("consumer", "下游系统", "a downstream system: reads, writes nothing"),
    Role("system", "系统进程", "the escalator and other processes: routes 交办, takes escalation steps, issues notices, "
                             "proposes 约谈 and 问责; decides nothing"),
)
ROLES: tuple[str, ...] = tuple(r.name for r in CATALOGUE)
ROLE_NAMES_ZH: dict[str, str] = {r.name: r.name_zh for r in CATALOGUE}

# --- the groups the rules check (each a write permission) ---------------------------------------
HQ_ROLES = frozenset({"admin", "hq_office"})
UNIT_ROLES = frozenset({"unit_officer", "unit_head"})
INSPECTOR_ROLES = frozenset({"supervisor", "leader", "hq_office"})
SYSTEM_ROLES = frozenset({"system"})
STEP_ROLES = SYSTEM_ROLES | {"hq_office"}  # take an escalation step (the escalator, or HQ by hand)
NOTICE_ISSUER_ROLES = HQ_ROLES | SYSTEM_ROLES
SUMMONS_ROLES = frozenset({"admin", "hq_office", "discipline"})  # schedule, hold, cancel a 约谈: people only
PROPOSER_ROLES = frozenset({"system", "admin", "hq_office", "discipline"})  # propose 约谈 or 问责
CASE_OPENER_ROLES = frozenset({"hq_office", "discipline"})  # open (立案) or decline a 问责 case
CASE_DECIDER_ROLES = frozenset({"discipline", "hq_leader"})  # decide measures and appeals
CASE_CLOSER_ROLES = CASE_DECIDER_ROLES | {"hq_office"}
# Acting for oneself or one's unit (签收 a notice or bulletin, appeal a case): anyone who may write at all.
WRITE_GROUPS: dict[str, frozenset[str]] = {
    "HQ_ROLES": HQ_ROLES, "UNIT_ROLES": UNIT_ROLES, "INSPECTOR_ROLES": INSPECTOR_ROLES, "SYSTEM_ROLES": SYSTEM_ROLES,
    "STEP_ROLES": STEP_ROLES, "NOTICE_ISSUER_ROLES": NOTICE_ISSUER_ROLES, "SUMMONS_ROLES": SUMMONS_ROLES,
    "PROPOSER_ROLES": PROPOSER_ROLES, "CASE_OPENER_ROLES": CASE_OPENER_ROLES,
    "CASE_DECIDER_ROLES": CASE_DECIDER_ROLES, "CASE_CLOSER_ROLES": CASE_CLOSER_ROLES,
}
WRITER_ROLES = frozenset().union(*WRITE_GROUPS.values())
READ_ONLY_ROLES = frozenset(ROLES) - WRITER_ROLES
# Who reads the audit (trails, as-of and knowledge views, escalation replay, dossiers) — of their campaign only
# when their token is bound to one: 督查室/审计, 纪委监委, and HQ's office, commander and operator.
AUDIT_READER_ROLES = frozenset({"auditor", "discipline", "hq_office", "hq_leader", "admin"})
# Acting for oneself or one's unit (签收, 申诉) takes a person: any writer but a process.
PERSON_ROLES = WRITER_ROLES - SYSTEM_ROLES
# Who manages access tokens over HTTP (签发/吊销访问令牌: POST, GET, DELETE /tokens), and the roles whose tokens only
# an admin issues or revokes (the operator's own, and a process's).
TOKEN_MANAGER_ROLES = frozenset({"admin", "hq_office"})
ADMIN_ISSUED_ROLES = frozenset({"admin", "system"})


def may_write(role: str) -> bool:
    """Some rule lets this role write something (a read-only role is refused every command)."""
    return role in WRITER_ROLES


def ensure_role(actor: Actor, roles: frozenset[str]) -> None:
    """Raise 403 unless the actor acts in one of `roles`."""
    if actor.role not in roles:
        raise Forbidden("role_not_allowed", "当前角色无权执行此操作", "this role may not issue this command",
                        role=actor.role, allowed=sorted(roles))


def ensure_may_write(actor: Actor) -> None:
    """Raise 403 when the actor's role is read-only (督查室/审计, downstream systems) or unknown."""
    if not may_write(actor.role):
        raise Forbidden("read_only_role", "该角色只能查询，不能提交指令", "this role may only read", role=actor.role)
