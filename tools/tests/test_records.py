"""nixecs.records makes classes that behave as the standard library's dataclasses."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from nixecs import records


def _pair(frozen: bool) -> tuple[Any, Any]:
    """The same class made by dataclasses and by records."""
    made = []
    for decorate in (dataclasses.dataclass, records.dataclass):

        @decorate(frozen=frozen)
        class Point:
            x: int
            label: str = "p"
            tags: list[str] = dataclasses.field(default_factory=list)
            hidden: float = dataclasses.field(default=0.5, repr=False, compare=False)
            seen: list[int] = dataclasses.field(init=False, default_factory=list)

        made.append(Point)
    return made[0], made[1]


def _behaviour(cls: Any) -> list[object]:
    a = cls(1, "a", ["t"])
    b = cls(x=1, label="a", tags=["t"], hidden=9.0)
    c = cls(2)
    seen: list[object] = [
        repr(a),
        repr(c),
        a == b,
        a == c,
        a != b,
        a.__eq__(object()),
        a.tags is not b.tags,
        c.tags == [] and c.seen == [],
        [(f.name, f.type) for f in dataclasses.fields(cls)],
        repr(cls.__dataclass_params__),
        dataclasses.asdict(a),
        repr(dataclasses.replace(a, x=5)),
        cls.__match_args__,
        dataclasses.is_dataclass(cls),
        repr(pickle.loads(pickle.dumps(a))) if cls.__qualname__.count("<") == 0 else None,
        repr(copy.copy(a)),
        cls.__dataclass_params__.frozen,
        cls.__dataclass_params__.eq,
    ]
    with pytest.raises(TypeError) as missing:
        cls()
    seen.append(str(missing.value).replace(cls.__qualname__, "C"))
    if cls.__dataclass_params__.frozen:
        try:
            seen.append(hash(a) == hash(b))
        except TypeError as error:  # a list field: unhashable, in both
            seen.append(str(error))
        with pytest.raises(dataclasses.FrozenInstanceError) as assigned:
            a.x = 3
        seen.append(str(assigned.value))
        with pytest.raises(dataclasses.FrozenInstanceError) as deleted:
            del a.label
        seen.append(str(deleted.value))
    else:
        seen.append(cls.__hash__)
        a.x = 3
        seen.append(a.x)
    return seen


@pytest.mark.parametrize("frozen", [True, False])
def test_a_record_behaves_as_a_dataclass(frozen: bool) -> None:
    standard, ours = _pair(frozen)
    assert _behaviour(ours) == _behaviour(standard)


def test_frozen_hash_is_the_fields_tuple_hash() -> None:
    @records.dataclass(frozen=True)
    class One:
        name: str

    @dataclasses.dataclass(frozen=True)
    class Standard:
        name: str

    assert hash(One("x")) == hash(Standard("x")) == hash(("x",))

    @records.dataclass(frozen=True)
    class Two:
        name: str
        note: str = dataclasses.field(default="", compare=False)

    assert hash(Two("x", "a")) == hash(Two("x", "b")) == hash(("x",))
    assert Two("x", "a") == Two("x", "b")
    nan = float("nan")

    @records.dataclass(frozen=True)
    class Value:
        v: float

    assert Value(nan) == Value(nan)  # a 1-tuple compares identical items equal, as dataclasses


def test_post_init_runs_and_order_is_checked_at_class_creation() -> None:
    @records.dataclass
    class Derived:
        a: int
        b: int = 0

        def __post_init__(self) -> None:
            self.b = self.a * 2

    assert Derived(3).b == 6
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        @records.dataclass
        class Wrong:
            a: int = 0
            b: int  # type: ignore[misc]


def test_what_it_does_not_handle_is_the_standard_librarys() -> None:
    @records.dataclass(frozen=True, order=True)
    class Ordered:
        a: int

    assert Ordered(1) < Ordered(2)

    @records.dataclass(frozen=True)
    class Base:
        a: int

    @records.dataclass(frozen=True)
    class Sub(Base):
        b: int = 0

    assert (
        Sub(1, 2) == Sub(1, 2)
        and repr(Sub(1))
        == "test_what_it_does_not_handle_is_the_standard_librarys.<locals>.Sub(a=1, b=0)"
    )

    @records.dataclass
    class Own:
        a: int

        def __repr__(self) -> str:
            return "own"

    assert repr(Own(1)) == "own"


def test_the_init_is_compiled_only_after_a_few_instances() -> None:
    @records.dataclass(frozen=True)
    class Lazy:
        a: int
        b: list[int] = dataclasses.field(default_factory=list)

    stub = Lazy.__dict__["__init__"]
    assert stub.__code__.co_varnames[:3] == ("self", "args", "kwargs")
    first = [Lazy(a=index) for index in range(records._COMPILE_AFTER)]
    assert Lazy.__dict__["__init__"] is stub  # bound generically, nothing compiled
    assert [x.a for x in first] == list(range(records._COMPILE_AFTER))
    assert first[0].b is not first[1].b
    later = Lazy(7, [1])
    assert Lazy.__dict__["__init__"] is not stub
    assert Lazy.__dict__["__init__"].__code__.co_varnames[:3] == ("self", "a", "b")
    assert (later.a, later.b) == (7, [1])


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c(),
        lambda c: c(1, "a", [], 0.5, 9),
        lambda c: c(1, x=2),
        lambda c: c(1, nope=2),
        lambda c: c(1, seen=[]),
    ],
)
def test_a_wrong_call_raises_what_dataclasses_raises(call: Any) -> None:
    standard, ours = _pair(frozen=True)
    with pytest.raises(TypeError) as expected:
        call(standard)
    with pytest.raises(TypeError) as got:
        call(ours)
    assert str(got.value) == str(expected.value)
