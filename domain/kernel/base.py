"""Building blocks every aggregate uses: the metadata envelope, events, commands, errors.

An event is a frozen pydantic model naming a business fact in the past tense. Every event
carries `meta` (the envelope of DESIGN §4): who acted, when it happened in the field, when it
was recorded, and the correlation/causation/command/campaign ids. Decision functions build
events with `meta=ctx.meta`; the application service assigns aggregate versions.
"""

from __future__ import annotations

from datetime import datetime
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, model_validator

from domain.kernel.edge import at_the_edge
from domain.kernel.instants import Instant, is_in_the_future
from domain.kernel.text import CommandId, Text

# Namespace for ids derived from business keys (deterministic, so retries and replays agree).
DUDAO_NAMESPACE = UUID("6f1d3c1e-8c1a-4f4e-9a53-2a1d1c0de000")


def derived_id(*parts: object) -> UUID:
    """A deterministic UUID from business-key parts (e.g. campaign + scope)."""
    return uuid5(DUDAO_NAMESPACE, "/".join(str(p) for p in parts))


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Frozen):
    """Who acted (操作人): a person (or a system process) and the role they acted in."""

    person_id: UUID | None = None
    role: str
    name: str | None = None


SYSTEM_ACTOR_ROLE = "system"


class Meta(Frozen):
    """The metadata envelope (元数据) carried by every event."""

    actor: Actor
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: UUID
    causation_id: UUID | None = None
    command_id: str
    campaign_id: UUID | None = None
    # Why (理由), as the command gave it; None on events stored before the envelope had it (they load unchanged).
    reason: str | None = None
    # True when written under a drill clock (演练模式: times are the drill's, not the world's). Left out of the stored
    # envelope otherwise, so events of a real deployment (and every event stored before) read exactly as they did.
    drill: bool | None = Field(default=None, exclude_if=lambda value: value is None)


def event_uuid(originator_id: UUID, version: int) -> UUID:
    """The UUID of one stored event (aggregate + version): what another event's `causation_id` names."""
    return derived_id("event", originator_id, version)


_REGISTRY: dict[str, type[DomainEvent]] = {}


class DomainEvent(Frozen):
    """Base of every event. Subclasses declare `kind` (aggregate kind) and `id_field`.

    `event_name` (ClassVar) is the stable registry name stored with the event; it defaults to
    `dudao.<kind>.<ClassName>` and must never change once events are stored.
    `class_version` with `upcast_v1_v2(data)` static methods migrates old stored payloads.
    A base that only shares fields (e.g. `ProblemEvent`) sets `abstract: ClassVar[bool] = True` in its
    own body: it is not an event type, so it is neither registered, stored nor published.
    """

    kind: ClassVar[str] = ""
    id_field: ClassVar[str] = ""
    event_name: ClassVar[str] = ""
    class_version: ClassVar[int] = 1

    meta: Meta

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if is_abstract(cls) or not cls.kind:
            return
        if "event_name" not in cls.__dict__:
            cls.event_name = f"dudao.{cls.kind}.{cls.__name__}"
        existing = _REGISTRY.get(cls.event_name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"duplicate event name {cls.event_name}")
        _REGISTRY[cls.event_name] = cls

    @property
    def aggregate_id(self) -> UUID:
        value = getattr(self, self.id_field)
        assert isinstance(value, UUID)
        return value


def event_registry() -> dict[str, type[DomainEvent]]:
    """Every registered event type by its stable name (import the aggregates first)."""
    return dict(_REGISTRY)


def event_class(name: str) -> type[DomainEvent]:
    return _REGISTRY[name]


def events_of_kind(kind: str) -> tuple[type[DomainEvent], ...]:
    """The registered event types of one aggregate kind (import the aggregate first)."""
    return tuple(cls for cls in _REGISTRY.values() if cls.kind == kind)


def is_abstract(cls: type) -> bool:
    """Whether `cls` declares itself a base rather than a concrete event or command type."""
    return bool(cls.__dict__.get("abstract", False))


class UnhandledEvent(TypeError):
    """A fold met an event it has no rule for: a missing branch or `apply`, never a fact to skip.

    Every evolver ends by raising it instead of returning the state unchanged, so an event added
    without its rule fails loudly, and the checklist test (tests/unit/test_event_checklist.py)
    can tell a fold that handles an event from one that would fall through.
    """

    def __init__(self, kind: str, event: object) -> None:
        super().__init__(f"the {kind} fold has no rule for {type(event).__name__}")
        self.kind = kind


def evolvers() -> dict[str, Any]:
    """Every registered fold `(state | None, event) -> state` by aggregate kind."""
    return dict(_EVOLVERS)


class Reasoned(Frozen):
    """What every command may say beyond its payload: why (`reason`, 理由), carried into the envelope (`Meta.reason`).

    `domain.reasons` names the commands that must give one. The envelope's reason is not part of
    the payload, so `model_dump` leaves it out unless the command declares a `reason` field of its own.
    """

    reason: Text | None = None  # free text (domain.kernel.text): it goes into every event's envelope

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        if not declares_own_reason(type(self)):
            kwargs["exclude"] = _with_reason(kwargs.get("exclude"))
        return super().model_dump(**kwargs)


def declares_own_reason(cls: type) -> bool:
    """Whether a command type declares `reason` itself (a field of its payload), not only the envelope's."""
    return any("reason" in vars(c).get("__annotations__", {}) for c in cls.__mro__[:-1] if c is not Reasoned
               and issubclass(c, Reasoned))


def _with_reason(exclude: Any) -> Any:
    if exclude is None:
        return {"reason"}
    if isinstance(exclude, dict):
        return {**exclude, "reason": True}
    return {*exclude, "reason"}


class Command(Reasoned):
    """Base of every command: an imperative request, validated at the edge.

    `command_id` is the client's idempotency key: the same id twice writes once.
    `occurred_at` is when the thing happened in the field (defaults to the recording time).
    Validating a command opens the edge (`domain.kernel.edge`): its fields and every value model
    nested in them obey the kernel's text, time and scalar rules, so each field is a kernel type
    (`text`, `instants`, `scalars`), a UUID, an enum or a literal — never a bare `str` or `int`.
    """

    command_id: CommandId
    occurred_at: Instant | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _validated_at_the_edge(cls, data: Any, handler: ModelWrapValidatorHandler[Command]) -> Command:
        with at_the_edge():
            return handler(data)


class CommandContext(Frozen):
    """What a decision needs besides state and command: the injected clock reading and the actor."""

    meta: Meta

    @model_validator(mode="after")
    def _not_in_the_future(self) -> CommandContext:
        """Nothing is decided about a time yet to come: `occurred_at` later than now (beyond the skew) is refused."""
        if is_in_the_future(self.meta.occurred_at, self.meta.recorded_at):
            raise DomainError("occurred_in_future", "发生时间不能晚于当前时间", "occurred_at is in the future",
                              occurred_at=self.meta.occurred_at.isoformat(), now=self.meta.recorded_at.isoformat())
        return self

    @property
    def now(self) -> datetime:
        return self.meta.recorded_at

    @property
    def actor(self) -> Actor:
        return self.meta.actor


class DomainError(Exception):
    """A command broke a rule. `code` is machine-readable; messages are zh-CN and en."""

    status = 422

    def __init__(self, code: str, message_zh: str, message_en: str, **details: Any) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.details = details


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Forbidden(DomainError):
    status = 403


S = TypeVar("S")
Evolve = Callable[[S | None, DomainEvent], S]

_EVOLVERS: dict[str, Callable[[Any, DomainEvent], object]] = {}


def evolver(kind: str) -> Callable[[Evolve[S]], Evolve[S]]:
    """Register the fold function `(state | None, event) -> state` of an aggregate kind."""

    def register(fn: Evolve[S]) -> Evolve[S]:
        _EVOLVERS[kind] = fn
        return fn

    return register


def fold(kind: str, events: Iterable[DomainEvent], state_type: type[S], state: S | None = None) -> S:
    """Rebuild an aggregate's state (a `state_type`) from its events, on top of `state` if given.

    There must be something to fold: at least one event, or a state to return unchanged.
    """
    evolve = _EVOLVERS[kind]
    folded: object = state
    for event in events:
        folded = evolve(folded, event)
    if folded is None:
        raise ValueError(f"no {kind} to fold: no events and no state")
    if not isinstance(folded, state_type):
        raise TypeError(f"{kind} folds into {type(folded).__name__}, not {state_type.__name__}")
    return folded
