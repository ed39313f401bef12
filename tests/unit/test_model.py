"""The records' generated constructors (shared/core/model.py "Generated constructors") build what the
dataclass-generated `__init__` builds; `Indicator` and `Outcome` are keyword-only."""

from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError, fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.model import (
    Action,
    FileProblem,
    Ignored,
    Indicator,
    IndicatorType,
    Outcome,
    Problem,
    ReadLimits,
    Severity,
    Status,
    new_indicator,
    new_outcome,
)

_text = st.text(max_size=8)
_opt_text = st.none() | _text
_names = st.none() | st.lists(_text, max_size=3).map(tuple)

indicator_fields = st.fixed_dictionaries(
    {
        "indicatorValue": _text,
        "indicatorType": st.sampled_from(list(IndicatorType)),
        "action": st.sampled_from(list(Action)),
        "title": _text,
        "description": _text,
    },
    optional={
        "severity": st.none() | st.sampled_from(list(Severity)),
        "expirationTime": _opt_text,
        "recommendedActions": _opt_text,
        "rbacGroupNames": _names,
        "category": _opt_text,
        "mitreTechniques": _names,
        "generateAlert": st.none() | st.booleans(),
        "externalId": _opt_text,
        "application": _opt_text,
        "educateUrl": _opt_text,
    },
)
outcome_fields = st.fixed_dictionaries(
    {
        "line": st.integers(0, 10**6),
        "value": _text,
        "type": _opt_text,
        "action": _opt_text,
        "status": st.none() | st.sampled_from(list(Status)),
    },
    optional={
        "reason": _opt_text,
        "id": _opt_text,
        "indicator": st.none() | indicator_fields.map(lambda kw: Indicator(**kw)),
        "position": st.booleans(),
        "notes": st.lists(_text, max_size=3).map(tuple),
        "duplicate_of": st.none() | st.integers(1, 100),
        "code": _opt_text,
    },
)


def _same(a: object, b: object) -> None:
    """Same class, same value in every field (compared or not), same hash."""
    assert type(a) is type(b)
    assert [getattr(a, f.name) for f in fields(a)] == [getattr(b, f.name) for f in fields(b)]  # type: ignore[arg-type]
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)


@given(indicator_fields)
def test_new_indicator_builds_what_the_dataclass_constructor_builds(kw):
    _same(new_indicator(**kw), Indicator(**kw))


@given(outcome_fields)
def test_new_outcome_builds_what_the_dataclass_constructor_builds(kw):
    made = new_outcome(**kw)
    _same(made, Outcome(**kw))
    _same(made.final(Status.skipped, "why", code="c"), Outcome(**kw).final(Status.skipped, "why", code="c"))


def test_indicator_and_outcome_take_keywords_only():
    """A positional call is a TypeError, so a field inserted later cannot shift arguments."""
    with pytest.raises(TypeError):
        Indicator("a.example", IndicatorType.DomainName, Action.Block, "t", "d")  # type: ignore[misc]
    with pytest.raises(TypeError):
        Outcome(1, "a.example", "DomainName", "Block", None)  # type: ignore[misc]
    with pytest.raises(TypeError):
        new_outcome(1, "a.example", "DomainName", "Block", None)  # type: ignore[misc]
    with pytest.raises(TypeError):
        new_outcome(line=1, value="v", type=None, action=None)  # type: ignore[call-arg]  # status is required


def _twin(cls: type) -> type:
    """The same frozen, slotted dataclass with the `__init__` dataclasses writes (no `_slot_init`)."""
    spec = [
        (f.name, f.type, dataclasses.field(default=f.default, compare=f.compare, hash=f.hash, repr=f.repr))
        for f in fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, spec, frozen=True, slots=True)


_SLOT_INIT = {
    Problem: st.tuples(_text, _text),
    Ignored: st.tuples(st.integers(0, 100), _text, _text),
    FileProblem: st.tuples(_text, st.none() | st.integers(), st.none() | st.integers(), st.booleans(), st.booleans()),
    ReadLimits: st.tuples(st.integers(0, 10**6), st.integers(0, 10**9), st.floats(allow_nan=False)),
}


@given(
    st.sampled_from(sorted(_SLOT_INIT, key=lambda c: c.__name__)).flatmap(
        lambda c: st.tuples(st.just(c), _SLOT_INIT[c])
    )
)
def test_slot_init_stores_what_the_dataclass_init_stores(case):
    """Every prefix of the arguments (the fields left out take their defaults), and assignment still refused."""
    cls, args = case
    twin = _twin(cls)
    required = sum(1 for f in fields(cls) if f.default is dataclasses.MISSING)
    for n in range(required, len(args) + 1):
        made, plain = cls(*args[:n]), twin(*args[:n])
        assert dataclasses.astuple(made) == dataclasses.astuple(plain)
        assert made == cls(*dataclasses.astuple(plain)) and hash(made) == hash(cls(*dataclasses.astuple(plain)))
    first = fields(cls)[0].name
    with pytest.raises(FrozenInstanceError):
        setattr(cls(*args), first, args[0])
