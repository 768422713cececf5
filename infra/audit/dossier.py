"""The accountability dossier (问责卷宗): one zh-CN HTML file made for printing (A4), from the store and the chain.

Sections, each starting a new page: the case and its basis; for each item of the basis its full trail
(every event touching it with actor, both times, reason and causation chain); the responsibility and
liaison links in force when each item arose and when the case was proposed; the notices about the
items and when each was signed (签收); the escalation replay verdict; and the integrity proof — the
chain range verified, its head, the signed digest it verifies against. Elements carry data-*
attributes (event ids, positions, hashes) so the file can be read back by a program.

No PDF: every well-kept pure-Python PDF writer would need the page laid out a second time by hand, and
Chinese text needs a font embedded (none ships without a system package); print this HTML to PDF in
any browser (it is laid out for A4 with running headers and page breaks).
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from uuid import UUID

from domain.consequences.accountability import MEASURE_NAMES_ZH, AccountabilityCase
from domain.escalation.notice import NOTICE_NAMES_ZH, Notice
from domain.kernel.base import NotFound
from domain.kernel.roles import ROLE_NAMES_ZH
from domain.kernel.timefmt import format_local
from infra.audit import asof, replay as rp
from infra.audit.history import AsOfReader, History
from infra.audit.verify import Report
from infra.audit.digests import Digest
from infra.store.event_store import Dudao
from projections import trail as tr

CSS = """
@page { size: A4; margin: 22mm 16mm 18mm 16mm;
        @top-center { content: "问责卷宗 · " attr(data-case); font-size: 9pt; color: #555; }
        @bottom-right { content: "第 " counter(page) " 页"; font-size: 9pt; } }
body { font-family: "Noto Serif CJK SC", "Source Han Serif SC", "SimSun", serif; font-size: 10.5pt; color: #111; }
header.running { position: fixed; top: -14mm; left: 0; right: 0; font-size: 9pt; color: #555;
                 border-bottom: 1px solid #999; }
h1 { font-size: 18pt; text-align: center; } h2 { font-size: 14pt; border-bottom: 2px solid #333; }
h3 { font-size: 12pt; } section.page { page-break-before: always; break-before: page; }
section.first { page-break-before: avoid; } table { width: 100%; border-collapse: collapse; margin: 4pt 0; }
thead { display: table-header-group; } tr { page-break-inside: avoid; break-inside: avoid; }
th, td { border: 1px solid #999; padding: 2pt 4pt; vertical-align: top; font-size: 9pt; }
th { background: #eee; } .mono { font-family: monospace; font-size: 8pt; word-break: break-all; }
.ok { color: #064; } .bad { color: #a00; font-weight: bold; } .chain { color: #555; font-size: 8pt; }
"""
VERDICT_ZH = {"followed": "依规", "manual": "人工执行", "not_called_for": "无依据", "missing": "应督未督"}
ROLE_ZH = {"lead": "牵头", "co": "配合", "bao_bao": "包保责任人", "liaison": "挂钩领导"}


def t(value: Any) -> str:
    return escape(format_local(value)) if isinstance(value, datetime) else escape("" if value is None else str(value))


def build(app: Dudao, conn: Any, case_id: UUID, now: datetime, proof: Report, digest: Digest | None,
          published_at: datetime | None) -> str:
    """The dossier of one case as HTML text."""
    history = History(app)
    reader = AsOfReader(history)
    case = reader.get("accountability_case", case_id, AccountabilityCase)
    if case is None:
        raise NotFound("accountability_case_not_found", "问责案件不存在", "accountability case not found", id=str(case_id))
    items = rp.items_of_case(history, case_id)
    refs = list(dict.fromkeys([(r.kind, r.id) for r in case.basis] + items))
    names = asof.names_at(reader, {case.subject.party_id} | {i for _, i in refs})
    case_trail = tr.trail(conn, case_id, limit=10_000)
    proposed_at = case_trail[0]["recorded_at"] if case_trail else now
    verdict = rp.replay(app, conn, items, case.campaign_id, now)
    parts = [f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>问责卷宗 {case_id}</title>'
             f"<style>{CSS}</style></head><body data-case=\"{case_id}\">",
             f'<header class="running">问责卷宗 · 案件 {case_id} · 生成于 {t(now)}</header>',
             _case_section(case, names, case_trail)]
    for kind, ref_id in refs:
        parts.append(_trail_section(conn, kind, ref_id, names))
    parts.append(_responsibility_section(app, case, refs, reader, proposed_at))
    parts.append(_notices_section(conn, reader, refs))
    parts.append(_replay_section(verdict))
    parts.append(_proof_section(proof, digest, published_at))
    parts.append("</body></html>")
    return "\n".join(parts)


def _case_section(case: AccountabilityCase, names: dict[str, str], events: list[dict[str, Any]]) -> str:
    measures = "、".join(MEASURE_NAMES_ZH.get(m, m) for m in case.measures) or "（尚未决定）"
    basis = "".join(f'<tr data-basis-kind="{escape(r.kind)}" data-basis-id="{r.id}"><td>{escape(r.kind)}</td>'
                    f'<td>{t(names.get(str(r.id), ""))}</td><td class="mono">{r.id}</td></tr>' for r in case.basis)
    return (f'<section class="first" id="case" data-case-id="{case.case_id}" data-status="{case.status}">'
            f"<h1>问责卷宗</h1><table><tbody>"
            f"<tr><th>案件编号</th><td class=\"mono\">{case.case_id}</td></tr>"
            f"<tr><th>问责对象</th><td>{t(case.subject.name or names.get(str(case.subject.party_id)))}"
            f"（{'单位' if case.subject.party_kind == 'unit' else '个人'}）</td></tr>"
            f"<tr><th>来源</th><td>{t(case.source)}</td></tr><tr><th>状态</th><td>{t(case.status)}</td></tr>"
            f"<tr><th>事由</th><td>{t(case.reason_zh)}</td></tr><tr><th>问责措施</th><td>{t(measures)}</td></tr>"
            f"</tbody></table><h3>依据</h3><table><thead><tr><th>类别</th><th>名称</th><th>编号</th></tr></thead>"
            f"<tbody>{basis}</tbody></table><h3>案件履历</h3>{_events_table(events, {})}</section>")


def _events_table(rows: list[dict[str, Any]], chains: dict[UUID, list[dict[str, Any]]]) -> str:
    body = []
    for r in rows:
        actor = r["actor"] or {}
        chain = chains.get(r["event_uuid"], [])
        caused = " ← ".join(f'<span data-cause="{c["aggregate_id"]}:{c["version"]}">{escape(asof.event_type_name(c["event_type"]))}'
                            f"（{t(c['recorded_at'])}）</span>" for c in chain)
        root = chain[-1]["command_id"] if chain else r["command_id"]
        body.append(
            f'<tr data-event-id="{r["aggregate_id"]}:{r["version"]}" data-position="{r["notification_id"]}">'
            f"<td>{r['notification_id']}</td><td>{escape(asof.event_type_name(r['event_type']))}</td>"
            f"<td>{t(actor.get('name'))}（{t(ROLE_NAMES_ZH.get(actor.get('role', ''), actor.get('role')))}）</td>"
            f"<td>{t(r['occurred_at'])}</td><td>{t(r['recorded_at'])}</td><td>{t(r['reason'])}</td>"
            f"<td class=\"mono\">{t(r['command_id'])}</td><td class=\"chain\">{caused or '—'}<br>根指令 {t(root)}</td></tr>")
    return ("<table><thead><tr><th>位置</th><th>事件</th><th>操作人</th><th>发生时间</th><th>记录时间</th><th>理由</th>"
            f"<th>指令</th><th>起因链</th></tr></thead><tbody>{''.join(body)}</tbody></table>")


def _trail_section(conn: Any, kind: str, ref_id: UUID, names: dict[str, str]) -> str:
    rows = tr.trail(conn, ref_id, limit=10_000)
    chains = tr.causation_chains(conn, rows)
    title = names.get(str(ref_id)) or (rows[0]["payload"].get("description") if rows else None) or str(ref_id)
    return (f'<section class="page trail" id="trail-{ref_id}" data-kind="{escape(kind)}" data-id="{ref_id}">'
            f"<h2>履历：{t(title)}（{escape(kind)}）</h2><p>共 {len(rows)} 条事件，按记录顺序。</p>"
            f"{_events_table(rows, chains)}</section>")


def _responsibility_section(app: Dudao, case: AccountabilityCase, refs: list[tuple[str, UUID]], reader: AsOfReader,
                            proposed_at: datetime) -> str:
    blocks = []
    for kind, ref_id in refs:
        events = reader.history.of(ref_id)
        if not events or kind not in ("problem", "visit", "place"):
            continue
        place = ref_id if kind == "place" else getattr(reader.get(kind, ref_id, object), "place_id", None)
        if place is None:
            continue
        for label, at in (("事项发生时", events[0].event.meta.recorded_at), ("提议问责时", proposed_at)):
            rows = asof.responsible_at(app, case.campaign_id, at, ("place", place), reader.history)
            cells = "".join(f'<tr data-party="{r["party_id"]}" data-role="{r["role"]}"><td>{t(r["scope_name"])}</td>'
                            f'<td>{t(ROLE_ZH.get(r["role"], r["role"]))}</td><td>{t(r["party_name"])}</td>'
                            f'<td>{t(r["valid_from"])}</td><td>{t(r["valid_to"]) or "—"}</td></tr>' for r in rows)
            blocks.append(f'<h3>{label}（{t(at)}）</h3><table data-at="{at.isoformat()}"><thead><tr><th>地点</th><th>角色</th>'
                          f"<th>责任主体</th><th>自</th><th>至</th></tr></thead><tbody>{cells}</tbody></table>")
    return (f'<section class="page" id="responsibility"><h2>责任分工与挂钩联系（当时有效）</h2>'
            f"{''.join(blocks) or '<p>无相关地点。</p>'}</section>")


def _notices_section(conn: Any, reader: AsOfReader, refs: list[tuple[str, UUID]]) -> str:
    ids = [r["aggregate_id"] for kind, ref_id in refs for r in tr.trail(conn, ref_id, limit=10_000)
           if r["kind"] == "notice"]
    rows = []
    for notice_id in dict.fromkeys(ids):
        n = reader.get("notice", notice_id, Notice)
        if n is None:
            continue
        to = "、".join(r.name or str(r.party_id) for r in n.recipients)
        rows.append(f'<tr data-notice="{n.notice_id}"><td>{escape(NOTICE_NAMES_ZH.get(n.notice_kind, n.notice_kind))}</td>'
                    f"<td>{t(to)}</td><td>{t(n.issued_at)}</td><td>{t(n.ack_due_at)}</td>"
                    f"<td>{t(n.acknowledged_at) or '<span class=bad>未签收</span>'}</td></tr>")
    return (f'<section class="page" id="notices"><h2>通知与签收</h2><table><thead><tr><th>通知</th><th>收件方</th>'
            f"<th>发出</th><th>签收时限</th><th>签收</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


def _replay_section(verdict: rp.Replay) -> str:
    rows = "".join(
        f'<tr data-verdict="{s.verdict}" data-step="{s.step_name}" data-item="{s.item_id}"><td>{t(s.item_kind)}</td>'
        f"<td>{t(rp.STEP_NAMES_ZH.get(s.step_name, s.step_name))}</td><td>{t(s.taken_at) or '—'}</td>"
        f"<td class=\"{'ok' if s.verdict in ('followed', 'manual') else 'bad'}\">{VERDICT_ZH[s.verdict]}</td>"
        f"<td>{t(s.detail)}</td></tr>" for i in verdict.items for s in i.steps)
    summary = "全部督办步骤均依当时有效的规则和当时记录的事实作出。" if verdict.agrees else "存在与规则不符的督办步骤，见下表。"
    return (f'<section class="page" id="replay" data-agrees="{str(verdict.agrees).lower()}"><h2>督办复盘</h2>'
            f"<p>{summary}</p><table><thead><tr><th>对象</th><th>步骤</th><th>执行时间</th><th>结论</th><th>说明</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></section>")


def _proof_section(proof: Report, digest: Digest | None, published_at: datetime | None) -> str:
    state = '<span class="ok">完整</span>' if proof.intact else f'<span class="bad">不一致：{t(proof.first.detail if proof.first else "")}</span>'
    d = ("<p>尚无签名摘要。</p>" if digest is None else
         f'<table id="digest" data-position="{digest.position}" data-head-hash="{digest.head_hash.hex()}" '
         f'data-signature="{digest.signature}"><tbody><tr><th>摘要位置</th><td>{digest.position}</td></tr>'
         f'<tr><th>链头哈希</th><td class="mono">{digest.head_hash.hex()}</td></tr><tr><th>签名时间</th><td>{t(digest.signed_at)}</td></tr>'
         f"<tr><th>算法 / 密钥</th><td>{digest.algorithm} / {escape(digest.key_id)}</td></tr>"
         f'<tr><th>签名</th><td class="mono">{digest.signature}</td></tr>'
         f"<tr><th>已发布至 Kafka</th><td>{t(published_at) or '尚未'}</td></tr></tbody></table>")
    return (f'<section class="page" id="integrity" data-intact="{str(proof.intact).lower()}" data-from="{proof.start}" '
            f'data-to="{proof.checked_to}" data-head-hash="{proof.head_hash.hex()}"><h2>完整性证明</h2>'
            f"<p>本卷宗所列事件均已纳入哈希链。已对哈希链位置 {proof.start + 1} 至 {proof.checked_to} 逐条重算校验"
            f"（{proof.events} 条事件，{proof.digests_checked} 份签名摘要）：{state}。</p>{d}"
            "<p>校验方法：每条事件按规范编码与前一链节的哈希一并计算 SHA-256，并与链表及已发布的签名摘要比对；"
            "可用 <code>dudao verify</code> 独立复核全部历史。</p></section>")
