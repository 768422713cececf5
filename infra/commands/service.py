"""The one generic application service: load, decide, append with optimistic concurrency, retry.

A command reads in one round trip (its receipt and the aggregates it is sure to read: `read_ahead`) and writes in
one (events and receipt); whatever else a rule reads is read when it asks.

Idempotency: the command receipt (command_id → payload digest and result) is written in the same
transaction as the events. A repeated command_id with the same payload returns the first result
without writing; with a different payload it is rejected (409).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, TypeVar
from uuid import UUID, uuid4

import structlog
from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg import IntegrityError as PgIntegrityError

from domain.kernel.base import (
    Actor, Command, CommandContext, Conflict, DomainError, DomainEvent, Meta, evolvers, fold,
)
from infra.commands import HANDLERS, Handler, Reader
from domain.kernel.base import event_uuid
from domain.reasons import has_reason, needs_reason
from infra.commands.authorization import authorize, ensure_role_allowed
from infra.commands.grants import Grant, unbound
from infra.commands.references import references
from domain.kernel.recorded import AlreadyRecorded
from infra.store.event_store import Dudao, Receipt, StoredDomainEvent, payload_digest

log = structlog.get_logger("dudao.commands")

Clock = Callable[[], datetime]
S = TypeVar("S")


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    command: str
    aggregate_id: str
    events: list[dict[str, Any]]
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "command": self.command,
            "aggregate_id": self.aggregate_id,
            "events": self.events,
            "replayed": self.replayed,
        }


class StoreReader(Reader):
    """Loads aggregate states from the store and remembers the version each was read at.

    An id whose events belong to another kind of aggregate reads as None (unknown for that kind).
    """

    def __init__(self, app: Dudao, actor: Actor | None = None,
                 loaded: Mapping[UUID, Sequence[StoredEvent]] | None = None) -> None:
        self.app = app
        self.actor = actor
        self.versions: dict[UUID, int] = {}
        self.kinds: dict[UUID, str | None] = {}
        self._states: dict[tuple[str, UUID], object] = {}
        # Histories read ahead with the command's receipt (`Dudao.store.load`): every id in it, events or none.
        self._loaded: Mapping[UUID, Sequence[StoredEvent]] = loaded or {}
        self._preloaded: frozenset[UUID] = frozenset()

    def preloaded(self, ids: Iterable[UUID], loaded: Mapping[UUID, Sequence[StoredEvent]]) -> StoreReader:
        """This reader, answering for `ids` from `loaded` (read in the same round trip as the receipt) instead of
        asking the store again."""
        self._loaded, self._preloaded = loaded, frozenset(ids)
        return self

    def _history(self, aggregate_id: UUID) -> list[StoredDomainEvent]:
        if aggregate_id in self._preloaded:
            return [self.app.decode(e) for e in self._loaded.get(aggregate_id, ())]
        return self.app.history(aggregate_id)

    def get(self, kind: str, aggregate_id: UUID, state_type: type[S]) -> S | None:
        key = (kind, aggregate_id)
        if key not in self._states:
            stored = self._history(aggregate_id)
            self.versions[aggregate_id] = stored[-1].originator_version if stored else 0
            self.kinds[aggregate_id] = stored[0].event.kind if stored else None
            same_kind = bool(stored) and stored[0].event.kind == kind
            self._states[key] = fold(kind, [s.event for s in stored], object) if same_kind else None
        state = self._states[key]
        if state is None or isinstance(state, state_type):
            return state
        raise TypeError(f"{kind} {aggregate_id} is a {type(state).__name__}, not a {state_type.__name__}")

    def query(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a read-model query `fn(conn, *args)` (e.g. the matrix's lead unit of a place)."""
        with self.app.store.datastore.get_connection() as conn:
            return fn(conn, *args)

    def taken_by_other_kind(self, kind: str, aggregate_id: UUID) -> bool:
        self.get(kind, aggregate_id, object)
        return self.kinds[aggregate_id] not in (None, kind)

    def version(self, aggregate_id: UUID) -> int:
        if aggregate_id not in self.versions and aggregate_id in self._preloaded:
            history = self._loaded.get(aggregate_id, ())
            self.versions[aggregate_id] = history[-1].originator_version if history else 0
        if aggregate_id not in self.versions:
            stored = self.app.recorder.select_events(aggregate_id, desc=True, limit=1)
            self.versions[aggregate_id] = stored[0].originator_version if stored else 0
        return self.versions[aggregate_id]


class StaleDecision(Exception):
    """A rule refused a command on a state that changed while it was being judged: judge it again."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(str(error))
        self.error = error


def event_ref(s: StoredDomainEvent) -> dict[str, Any]:
    """How a command's result names one of its events."""
    return {"event_id": s.event_id, "type": s.event.event_name, "aggregate_id": str(s.originator_id),
            "version": s.originator_version}


class CommandService:
    def __init__(self, app: Dudao, clock: Clock, max_attempts: int = 10) -> None:
        self.app = app
        self.clock = clock
        self.max_attempts = max_attempts

    def handle(
        self, command: Command, actor: Actor | Grant, *, correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> CommandResult:
        """Run one command as `actor`: a token's `Grant` (HTTP, CLI), or an in-process `Actor` (any campaign)."""
        grant = actor if isinstance(actor, Grant) else unbound(actor)
        handler = HANDLERS[type(command)]
        name = type(command).__name__
        started = time.perf_counter()
        correlation_id = correlation_id or uuid4()
        bound = log.bind(command=name, command_id=command.command_id, correlation_id=str(correlation_id))
        outcome = "error"
        try:
            result = self._handle(handler, command, grant, correlation_id, causation_id)
            outcome = "replayed" if result.replayed else "accepted"
            return result
        except Exception as exc:
            outcome = getattr(exc, "code", type(exc).__name__)
            raise
        finally:
            bound.info("command", outcome=outcome, duration_ms=round((time.perf_counter() - started) * 1000, 2))

    def _handle(
        self, handler: Handler[Any], command: Command, grant: Grant, correlation_id: UUID, causation_id: UUID | None
    ) -> CommandResult:
        actor = grant.actor
        ensure_role_allowed(handler, actor)  # 403 before anything is read
        name = type(command).__name__
        body: dict[str, Any] = {"cmd": command.model_dump(mode="json", exclude={"command_id"}),
                                "actor": actor.model_dump(mode="json")}
        if command.reason is not None:  # only then, so receipts written before commands had a reason still match
            body["reason"] = command.reason
        digest = payload_digest(name, body)
        reads = read_ahead(handler, command)
        for attempt in range(self.max_attempts):
            try:
                with self._serialized(handler.serialize):
                    # The receipt and the aggregates the command will read, in one round trip (under the lock, if any).
                    receipt, loaded = self.app.store.load(command.command_id, reads)
                    if (prior := replay_of(receipt, command.command_id, digest)) is not None:
                        return prior
                    reader = StoreReader(self.app, grant.actor).preloaded(reads, loaded)
                    return self._attempt(handler, command, grant, correlation_id, causation_id, digest, reader)
            except (IntegrityError, PgIntegrityError):
                # A receipt or an aggregate version appeared meanwhile: back off (jittered), look again.
                time.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))
                continue
            except StaleDecision as stale:
                # A concurrent command changed what the rule read (e.g. another delivery of the same upload
                # stored it): judge again on the new state, which may find the intent already recorded.
                if attempt + 1 == self.max_attempts:
                    raise stale.error from None
            except DomainError:
                # A concurrent delivery of this very command may have changed the state we read.
                if (prior := self._prior(command.command_id, digest)) is not None:
                    return prior
                raise
        if (prior := self._prior(command.command_id, digest)) is not None:
            return prior
        raise Conflict("concurrent_modification", "数据正被他人修改，请重试", "concurrent modification, retry")

    @contextmanager
    def _serialized(self, lock: str | None) -> Iterator[None]:
        if lock is None:
            yield
            return
        with self.app.store.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock,))

    def _prior(self, command_id: str, digest: str) -> CommandResult | None:
        return replay_of(self.app.store.get_receipt(command_id), command_id, digest)

    def _attempt(
        self, handler: Handler[Any], command: Command, grant: Grant, correlation_id: UUID,
        causation_id: UUID | None, digest: str, reader: StoreReader,
    ) -> CommandResult:
        actor, now = grant.actor, self.clock()
        reader.grant = grant
        campaign_id = authorize(handler, command, grant, reader, now)  # campaign, references and scope
        target = handler.target(command)
        state = reader.get(handler.kind, target, object)
        if reader.taken_by_other_kind(handler.kind, target):
            raise Conflict("id_taken", "该编号已被其他类型的对象使用", "this id belongs to another kind of object", id=str(target))
        meta = Meta(
            actor=actor, occurred_at=command.occurred_at or now, recorded_at=now, correlation_id=correlation_id,
            causation_id=causation_id, command_id=command.command_id, campaign_id=campaign_id,
            drill=True if getattr(self.clock, "drill", False) else None,  # 演练: written under the drill clock
        )
        if needs_reason(command, state) and not has_reason(command):
            raise DomainError("reason_required", "此项变更须说明理由（reason）", "this change needs a reason",
                              command=type(command).__name__)
        meta = meta.model_copy(update={"reason": command.reason})
        ctx = CommandContext(meta=meta)
        events = self._decide(handler, state, command, ctx, reader)
        if isinstance(events, AlreadyRecorded):
            return self._recorded(events, command, target)
        stored = caused_by_target(self._sequence(events, reader), target, causation_id)
        result = CommandResult(
            command_id=command.command_id, command=type(command).__name__, aggregate_id=str(target),
            events=[{"event_id": s.event_id, "type": s.event.event_name, "aggregate_id": str(s.originator_id),
                     "version": s.originator_version} for s in stored],
        )
        receipt = Receipt(command.command_id, type(command).__name__, digest, {k: v for k, v in result.as_dict().items() if k != "replayed"})
        self.app.save(*stored, receipt=receipt)
        return result

    def _decide(self, handler: Handler[Any], state: object, command: Command, ctx: CommandContext,
                reader: StoreReader) -> list[DomainEvent]:
        """The rule's events; a refusal judged on aggregates that changed meanwhile is a `StaleDecision`."""
        try:
            if handler.gather is not None:
                return handler.decide(state, command, ctx, handler.gather(command, reader))
            return handler.decide(state, command, ctx)
        except DomainError as error:
            latest = self.app.store.latest_versions(reader.versions)
            if any(latest.get(aid, 0) != version for aid, version in reader.versions.items()):
                raise StaleDecision(error) from error
            raise

    def _recorded(self, recorded: AlreadyRecorded, command: Command, target: UUID) -> CommandResult:
        """The result of the command that stored this intent first (from its receipt), as a replay."""
        stored = self.app.event_at(recorded.aggregate_id, recorded.version)
        receipt = self.app.store.get_receipt(stored.event.meta.command_id) if stored is not None else None
        if receipt is not None:
            return CommandResult(**{**receipt.result, "replayed": True})
        # Stored without a receipt (written before receipts existed): name the event that records it.
        events = [] if stored is None else [event_ref(stored)]
        return CommandResult(command_id=command.command_id, command=type(command).__name__, aggregate_id=str(target),
                             events=events, replayed=True)

    @staticmethod
    def _sequence(events: list[DomainEvent], reader: StoreReader) -> list[StoredDomainEvent]:
        next_version: dict[UUID, int] = {}
        out = []
        for e in events:
            aid = e.aggregate_id
            v = next_version.get(aid, reader.version(aid)) + 1
            next_version[aid] = v
            out.append(StoredDomainEvent(aid, v, e))
        return out


def replay_of(receipt: Receipt | None, command_id: str, digest: str) -> CommandResult | None:
    """The first result again for a command already accepted with this payload; 409 for the same id with another."""
    if receipt is None:
        return None
    if receipt.payload_sha256 != digest:
        raise Conflict(
            "command_id_reused", "该指令编号已用于另一条不同的指令", "command_id was already used for a different command",
            command_id=command_id,
        )
    return CommandResult(**{**receipt.result, "replayed": True})


def read_ahead(handler: Handler[Any], command: Command) -> list[UUID]:
    """The aggregates a command is sure to read before its rule runs: its target, the campaign its body names, and
    every aggregate it references (`infra.commands.authorization` reads each). Read in one round trip with the
    receipt; whatever else a rule reads (its `gather`, an ancestor walk) is read when asked for."""
    kinds = evolvers()
    ids = [handler.target(command)]
    if (named := handler.campaign(command)) is not None:
        ids.append(named)
    ids += [ref.id for ref in references(command, handler.refs) if ref.kind in kinds]
    return list(dict.fromkeys(ids))


def caused_by_target(stored: list[StoredDomainEvent], target: UUID, given: UUID | None) -> list[StoredDomainEvent]:
    """Events a command writes on other aggregates on behalf of its target are caused by the target's event.

    A 交办单 issued with a 交办, the notice and proposals of an escalation step, a 签收 of the
    notice with the problem's: each names (`causation_id`) the latest event the same command wrote
    on its target before it, unless the decision named a cause of its own.
    """
    out, cause = [], None
    for s in stored:
        if s.originator_id == target:
            cause = event_uuid(s.originator_id, s.originator_version)
        elif cause is not None and s.event.meta.causation_id == given:
            meta = s.event.meta.model_copy(update={"causation_id": cause})
            s = StoredDomainEvent(s.originator_id, s.originator_version, s.event.model_copy(update={"meta": meta}))
        out.append(s)
    return out

