"""Roles (角色) have one home: the HTTP read-only set is exactly the roles no rule lets write."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from datetime import date, datetime
from pathlib import Path
from uuid import uuid4

import pytest

import domain
from domain.consequences.bulletin import AcknowledgeBulletin, Bulletin, BulletinRefs, ListedStep, acknowledge_bulletin
from domain.escalation.notice import AckRefs, AcknowledgeNotice, Notice, Recipient, acknowledge_notice
from domain.kernel.base import Actor, CommandContext, DomainError, Forbidden, Meta
from domain.kernel.calendar import CHINA_TZ
from domain.kernel.roles import AUDIT_READER_ROLES, CATALOGUE, READ_ONLY_ROLES, ROLES, WRITE_GROUPS, WRITER_ROLES
from infra.bootstrap import load_handlers
from infra.commands import HANDLERS
from infra.http.auth import Grant, ensure_may_write

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2022, 1, 10, 10, tzinfo=CHINA_TZ)
UNIT = uuid4()


def ctx(role: str) -> CommandContext:
    return CommandContext(meta=Meta(actor=Actor(role=role, person_id=uuid4()), occurred_at=NOW, recorded_at=NOW,
                                    correlation_id=uuid4(), command_id=str(uuid4())))


def http_refuses_writes(role: str) -> bool:
    """What the HTTP API answers before any command or upload: 403 read_only_role or not."""
    try:
        ensure_may_write(Grant(Actor(role=role, person_id=uuid4())))
    except Forbidden as err:
        return err.code == "read_only_role"
    return False


def domain_role_gates() -> list[frozenset[str]]:
    """Every role set a rule checks: each domain module's role groups and each command handler's roles."""
    load_handlers()
    gates = [h.roles for h in HANDLERS.values() if h.roles is not None]
    for info in pkgutil.walk_packages(domain.__path__, "domain."):
        for value in vars(importlib.import_module(info.name)).values():
            if isinstance(value, frozenset) and value and value <= set(ROLES) and value not in (
                    READ_ONLY_ROLES, WRITER_ROLES, AUDIT_READER_ROLES, frozenset(ROLES)):
                gates.append(value)
    return gates


def test_every_role_has_one_entry_with_a_chinese_name_and_what_it_may_do() -> None:
    """The catalogue names each role once, with its Chinese name and a line saying what it may do."""
    assert len(ROLES) == len(set(ROLES)) == len(CATALOGUE)
    assert all(r.name_zh and r.may for r in CATALOGUE)
    assert set().union(*WRITE_GROUPS.values()) <= set(ROLES)


def test_the_http_read_only_roles_are_exactly_those_no_rule_lets_write() -> None:
    """A role HTTP refuses every write is one that no domain rule or handler admits, and the other way round."""
    never_written = set(ROLES) - set().union(*domain_role_gates())
    assert {role for role in ROLES if http_refuses_writes(role)} == never_written == READ_ONLY_ROLES
    assert READ_ONLY_ROLES == {"auditor", "consumer"}


def test_an_unknown_role_may_not_write_either() -> None:
    """A token whose role is not in the catalogue is treated as read-only (403), never as a writer."""
    assert http_refuses_writes("janitor")


@pytest.mark.parametrize("role", sorted(READ_ONLY_ROLES))
def test_a_reader_may_not_sign_a_notice_even_as_its_recipient(role: str) -> None:
    """签收 has no role list of its own, so the rule itself refuses read-only roles (403 read_only_role)."""
    notice = Notice(notice_id=uuid4(), campaign_id=uuid4(), notice_kind="assignment", subject_kind="problem",
                    subject_id=uuid4(), recipients=(Recipient(party_kind="unit", party_id=UNIT),), channels=("sms",),
                    text_zh="【交办单】", issued_at=NOW, ack_due_at=NOW)
    cmd = AcknowledgeNotice(command_id="a", notice_id=notice.notice_id)
    assert acknowledge_notice(notice, cmd, ctx("unit_officer"), AckRefs(frozenset({UNIT})))  # a writer signs
    with pytest.raises(Forbidden) as err:
        acknowledge_notice(notice, cmd, ctx(role), AckRefs(frozenset({UNIT})))
    assert err.value.code == "read_only_role"


@pytest.mark.parametrize("role", sorted(READ_ONLY_ROLES))
def test_a_reader_may_not_sign_a_bulletin_even_for_a_named_unit(role: str) -> None:
    """A bulletin's 签收 by a member of a named unit is refused when the member acts in a read-only role."""
    bulletin = Bulletin(bulletin_id=uuid4(), campaign_id=uuid4(), period_start=date(2022, 1, 3),
                        period_end=date(2022, 1, 7), title="通报", body_zh="通报", red_list=(), black_list=(), flags=(),
                        listed_escalations=(ListedStep(step_id=uuid4(), unit_id=UNIT, unit_name="东门街道",
                                                       summary_zh="逾期"),), issued_at=NOW)
    cmd = AcknowledgeBulletin(command_id="a", bulletin_id=bulletin.bulletin_id, unit_id=UNIT)
    assert acknowledge_bulletin(bulletin, cmd, ctx("unit_head"), BulletinRefs(actor_unit_ids=frozenset({UNIT})))
    with pytest.raises(DomainError) as err:
        acknowledge_bulletin(bulletin, cmd, ctx(role), BulletinRefs(actor_unit_ids=frozenset({UNIT})))
    assert err.value.code == "read_only_role"


def role_sets_spelled_out(path: Path) -> list[int]:
    """Lines of `path` that write a set or frozenset of role names as a literal."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Set):
            names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
            if names and names <= set(ROLES):
                lines.append(node.lineno)
    return lines


def test_no_module_but_the_roles_module_spells_out_a_set_of_roles() -> None:
    """Role groups live in domain/kernel/roles.py only; everything else imports them by name."""
    found = {}
    for package in ("domain", "projections", "consumers", "infra"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path != ROOT / "domain" / "kernel" / "roles.py" and (lines := role_sets_spelled_out(path)):
                found[str(path.relative_to(ROOT))] = lines
    assert found == {}
