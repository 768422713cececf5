"""The event checklist (事件登记清单), enforced: every event and command has every entry the system needs.

An event or command is registered in several places: its fold, its timeline line (problem
events), its command handler, the published contract, each read model that reads its kind. A
missing entry used to be silent — the ledger skipped a problem event without a summary, and a
fold returned the state unchanged for an event it did not know. Each check below names every
gap; the tests after the first feed each check a throwaway event, fold, command or read model of
a test-only kind and prove it reports what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import pytest

from domain.kernel import base
from domain.kernel.base import (
    Command, DomainError, DomainEvent, UnhandledEvent, event_registry, evolver, evolvers, is_abstract,
)
from domain import problem as pr
from domain.problem.commands import ProblemCommand, lifecycle
from infra.bootstrap import all_projections, load_handlers
from infra.commands import HANDLERS
from projections.base import Projection
from tests.support.samples import sample_model

pytestmark = pytest.mark.unit

CONTRACT = Path(__file__).resolve().parents[2] / "contract"
Evolve = Callable[[Any, DomainEvent], object]


def _ours(cls: type) -> bool:
    """Defined by the product, not by a test (tests register throwaway events and commands in-process)."""
    return not cls.__module__.startswith("tests.")


def _subclasses(cls: type[Any]) -> list[type[Any]]:
    found: list[type[Any]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def product_events() -> dict[str, type[DomainEvent]]:
    """Every registered event type of the product, once every domain module and handler is loaded."""
    load_handlers()
    return {name: cls for name, cls in event_registry().items() if _ours(cls)}


def product_commands() -> list[type[Command]]:
    """Every concrete command type of the product (bases marked `abstract` are not commands)."""
    load_handlers()
    return [c for c in _subclasses(Command) if _ours(c) and not is_abstract(c)]


def published_events() -> set[str]:
    """The event names that have a JSON Schema in the checked-in contract (contract/)."""
    return {p.name.removesuffix(".schema.json") for p in CONTRACT.glob("*.schema.json")}


# --- the checks -----------------------------------------------------------------------------------


def unmarked_bases(events: Iterable[type[DomainEvent]]) -> list[str]:
    """A registered event that another registered event extends is a base that forgot its marker."""
    registered = set(events)
    return [f"{cls.event_name}: a base of {sub.__name__}, registered as an event; mark it abstract"
            for cls in registered for sub in _subclasses(cls) if sub in registered]


def problem_event_gaps(events: Iterable[type[DomainEvent]]) -> list[str]:
    """Every problem event states how it folds (`apply`) and its line in the timeline (`summary_zh`)."""
    gaps = []
    for cls in events:
        if not issubclass(cls, pr.ProblemEvent):
            continue
        if cls.apply is pr.ProblemEvent.apply:
            gaps.append(f"{cls.event_name}: no `apply` (how it changes the Problem)")
        if cls.summary_zh is pr.ProblemEvent.summary_zh:
            gaps.append(f"{cls.event_name}: no `summary_zh` (its line in the ledger timeline)")
    return gaps


class _Stranger(DomainEvent):
    """An event no fold knows (abstract: never registered, stored or published)."""

    abstract: ClassVar[bool] = True
    kind = "test_stranger"
    id_field = "stranger_id"
    stranger_id: UUID


def _started(evolve: Evolve, event: DomainEvent) -> object | None:
    """The state `event` makes from nothing, or None when it cannot start the fold."""
    try:
        return evolve(None, event)
    except (AssertionError, UnhandledEvent, DomainError):
        return None


def _has_rule(evolve: Evolve, state: object, event: DomainEvent) -> bool:
    """Whether the fold applies `event` to `state` by a rule of its own rather than refusing it."""
    try:
        evolve(state, event)
    except UnhandledEvent:
        return False
    except AssertionError:
        pass  # its rule ran and found the sample state unfit (e.g. resuming what is not parked)
    return True


def fold_gaps(events: Iterable[type[DomainEvent]], folds: Mapping[str, Evolve]) -> list[str]:
    """Each kind has a fold; it has a rule for each of its events and refuses one it does not know."""
    by_kind: dict[str, list[type[DomainEvent]]] = {}
    for cls in events:
        by_kind.setdefault(cls.kind, []).append(cls)
    gaps = []
    for kind, members in sorted(by_kind.items()):
        if kind not in folds:
            gaps.append(f"kind {kind}: events but no fold (@evolver({kind!r}))")
            continue
        evolve = folds[kind]
        samples = [sample_model(cls) for cls in members]
        state = next((s for s in (_started(evolve, e) for e in samples) if s is not None), None)
        if state is None:
            gaps.append(f"kind {kind}: no event starts its fold")
            continue
        gaps += [f"{type(e).event_name}: the {kind} fold has no rule for it" for e in samples
                 if _started(evolve, e) is None and not _has_rule(evolve, state, e)]
        try:
            evolve(state, sample_model(_Stranger))
            gaps.append(f"kind {kind}: its fold returns the state unchanged for an event it does not know"
                        " (end it with `raise UnhandledEvent`)")
        except (UnhandledEvent, DomainError):
            pass
    return gaps


# What every problem lifecycle command declares beside its fields (infra registers its handler from them).
DECLARED = {"roles": "the roles that may issue it", "reads": "the ProblemRefs fields its decision reads"}


def handler_gaps(commands: Iterable[type[Command]], handlers: Mapping[type[Command], object],
                 decided: Collection[type[Command]]) -> list[str]:
    """Every command has a handler; every problem lifecycle command declares its roles and reads, names only its own
    fields as references, and has a decision marked `@decides`."""
    gaps = []
    for cmd in commands:
        if cmd not in handlers:
            gaps.append(f"{cmd.__module__}.{cmd.__name__}: no command handler registered (infra/commands)")
        if not issubclass(cmd, ProblemCommand):
            continue
        gaps += [f"{cmd.__name__}: no `{name}` ({what}) beside its fields" for name, what in DECLARED.items()
                 if getattr(cmd, name, None) is None]
        gaps += [f"{cmd.__name__}: `references` names {name!r}, not one of its fields"
                 for name in sorted(set(cmd.references) - set(cmd.model_fields))]
        if cmd not in decided:
            gaps.append(f"{cmd.__name__}: no decision marked @decides({cmd.__name__})")
    return gaps


def contract_gaps(events: Mapping[str, type[DomainEvent]], published: set[str]) -> list[str]:
    """Every event is in the published contract, and the contract publishes nothing that is not an event."""
    missing = [f"{name}: not in the published contract (run `dudao schema export contract`)"
               for name in sorted(set(events) - published)]
    extra = [f"{name}: published in contract/ but not a registered event (a base? export again)"
             for name in sorted(published - set(events))]
    return missing + extra


def projection_gaps(events: Iterable[type[DomainEvent]], projections: Iterable[Projection]) -> list[str]:
    """A read model that reads some events of a kind reads all of them, unless it declares the kind partial."""
    events = list(events)
    gaps = []
    for projection in projections:
        kinds = {t.kind for t in projection.handlers} - projection.partial_kinds
        gaps += [f"{cls.event_name}: projection {projection.name or type(projection).__name__} reads other"
                 f" {cls.kind} events but not this one (handle it, or list {cls.kind!r} in partial_kinds)"
                 for cls in events if cls.kind in kinds and cls not in projection.handlers]
    return gaps


def checklist() -> list[str]:
    """Every gap in the product, one line each naming the missing entry."""
    events = product_events()
    return (unmarked_bases(events.values()) + problem_event_gaps(events.values())
            + fold_gaps(events.values(), evolvers()) + handler_gaps(product_commands(), HANDLERS, lifecycle())
            + contract_gaps(events, published_events()) + projection_gaps(events.values(), all_projections()))


def test_every_event_and_command_has_every_entry_it_needs() -> None:
    """No registered event lacks its fold rule, timeline line, contract schema or projection handler, no command its
    handler, no problem command its declarations or decision."""
    gaps = checklist()
    assert not gaps, "missing entries:\n" + "\n".join(gaps)


def test_the_abstract_bases_are_not_events() -> None:
    """ProblemEvent, PolicyEvent and the visit base are not registered, published or checked as commands."""
    names = set(product_events()) | published_events()
    assert not {"dudao.problem.ProblemEvent", "dudao.campaign_policy.PolicyEvent", "dudao.visit._VisitEvent"} & names
    assert ProblemCommand not in product_commands()


# --- each check can fail ----------------------------------------------------------------------------


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Throwaway events and folds register into copies of the registries, restored after the test."""
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.setattr(base, "_EVOLVERS", dict(base._EVOLVERS))
    yield


class _Note(DomainEvent):
    """Base of the throwaway events: a test-only kind, never in the contract."""

    abstract: ClassVar[bool] = True
    kind = "test_checklist"
    id_field = "note_id"
    note_id: UUID


@pytest.mark.usefixtures("scratch")
def test_a_problem_event_without_its_apply_or_summary_is_named() -> None:
    """A problem-shaped event of a test-only kind that states neither how it folds nor how it reads is reported twice."""

    class Jotted(pr.ProblemEvent):
        kind = "test_checklist"

    class Worded(pr.ProblemEvent):
        kind = "test_checklist"

        def apply(self, s: Any) -> pr.Update:
            return {}

        def summary_zh(self) -> str:
            return "记录"

    assert problem_event_gaps([Jotted, Worded]) == [
        "dudao.test_checklist.Jotted: no `apply` (how it changes the Problem)",
        "dudao.test_checklist.Jotted: no `summary_zh` (its line in the ledger timeline)",
    ]


@pytest.mark.usefixtures("scratch")
def test_an_event_its_fold_has_no_rule_for_is_named() -> None:
    """A fold that refuses unknown events but lacks the rule for one of its kind's events is reported for that event."""

    class Opened(_Note):
        pass

    class Amended(_Note):
        pass

    @evolver("test_checklist")
    def evolve(state: str | None, event: DomainEvent) -> str:
        if isinstance(event, Opened):
            return "open"
        raise UnhandledEvent("test_checklist", event)

    assert fold_gaps([Opened, Amended], evolvers()) == [
        "dudao.test_checklist.Amended: the test_checklist fold has no rule for it"]


@pytest.mark.usefixtures("scratch")
def test_a_fold_that_falls_through_is_named() -> None:
    """A fold that returns the state unchanged for an event it does not know is reported, as is a kind without a fold."""

    class Opened(_Note):
        pass

    class Drifted(DomainEvent):
        kind = "test_checklist_unfolded"
        id_field = "drift_id"
        drift_id: UUID

    @evolver("test_checklist")
    def evolve(state: str | None, event: DomainEvent) -> str:
        return "open" if isinstance(event, Opened) else (state or "")

    assert fold_gaps([Opened, Drifted], evolvers()) == [
        "kind test_checklist: its fold returns the state unchanged for an event it does not know"
        " (end it with `raise UnhandledEvent`)",
        "kind test_checklist_unfolded: events but no fold (@evolver('test_checklist_unfolded'))",
    ]


def test_a_command_without_a_handler_or_its_declarations_is_named() -> None:
    """A command nobody handles, and a problem command lacking its roles, reads or decision or naming a field it does
    not have as a reference, are each reported by name; one that declares everything is not."""

    class JotDown(Command):
        note: str

    class Reopen(ProblemCommand):
        references = {"unit_id": "unit"}

    class Revisit(ProblemCommand):
        roles = frozenset({"hq_office"})
        reads = frozenset({"policy"})
        references = {"place_id": "place"}
        place_id: UUID

    assert handler_gaps([JotDown, Reopen, Revisit], {Reopen: object(), Revisit: object()}, {Revisit}) == [
        f"{__name__}.JotDown: no command handler registered (infra/commands)",
        "Reopen: no `roles` (the roles that may issue it) beside its fields",
        "Reopen: no `reads` (the ProblemRefs fields its decision reads) beside its fields",
        "Reopen: `references` names 'unit_id', not one of its fields",
        "Reopen: no decision marked @decides(Reopen)",
    ]


@pytest.mark.usefixtures("scratch")
def test_an_event_missing_from_the_contract_and_a_stale_schema_are_named() -> None:
    """An event without a schema and a schema without an event (an abstract base left behind) are both reported."""

    class Opened(_Note):
        pass

    published = {"dudao.problem.ProblemEvent"}
    assert contract_gaps({Opened.event_name: Opened}, published) == [
        "dudao.test_checklist.Opened: not in the published contract (run `dudao schema export contract`)",
        "dudao.problem.ProblemEvent: published in contract/ but not a registered event (a base? export again)",
    ]


@pytest.mark.usefixtures("scratch")
def test_a_projection_that_reads_part_of_a_kind_is_named_unless_it_says_so() -> None:
    """A read model handling one event of a kind but not its sibling is reported; declaring the kind partial silences it."""

    class Opened(_Note):
        pass

    class Amended(_Note):
        pass

    class Notes(Projection):  # no `name`: never picked up by all_projections()
        def register(self) -> None:
            self.on(Opened)(lambda curs, rec: None)

    class SomeNotes(Notes):
        partial_kinds = frozenset({"test_checklist"})

    assert projection_gaps([Opened, Amended], [Notes(), SomeNotes()]) == [
        "dudao.test_checklist.Amended: projection Notes reads other test_checklist events but not this one"
        " (handle it, or list 'test_checklist' in partial_kinds)"]


@pytest.mark.usefixtures("scratch")
def test_a_registered_base_is_named() -> None:
    """An event class that other events extend, without the abstract marker, is reported as a registered base."""

    class Noted(_Note):
        pass

    class Renoted(Noted):
        pass

    assert unmarked_bases([Noted, Renoted]) == [
        "dudao.test_checklist.Noted: a base of Renoted, registered as an event; mark it abstract"]
