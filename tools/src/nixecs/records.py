"""`dataclass` and `field` as the standard library's, at a fraction of the import cost.

Why (issue 18, item 4): `nixecs validate` imports some sixty dataclasses, and Python 3.11's
`dataclasses` compiles five or six functions for each with `exec` (`__init__`, `__repr__`,
`__eq__`, `__hash__`, a frozen class's `__setattr__` and `__delattr__`): measured, a third
of `validate`'s whole CPU time on a small fleet. Here the comparison, hashing, repr and frozen
methods are written once, below, for every class (operator.attrgetter makes the tuples they
compare and hash, as the generated code does), and `__init__`, the one method whose speed
matters at scale, is still generated as the standard library does, but only once the class
has built a few instances (the first ones bind their arguments generically): a class the
command builds a few times, or never, compiles nothing.

The field processing itself (defaults, `field()`, `__dataclass_fields__`, `__match_args__`)
is the standard library's, so `dataclasses.fields`, `replace` and `asdict` work unchanged.
What this does not handle goes to `dataclasses.dataclass` as written: options other than
`frozen`, inheritance from a dataclass, a class defining its own `__init__`, `__repr__`,
`__eq__`, `__hash__`, `__setattr__`, `__delattr__` or `__slots__`, `InitVar`, `ClassVar`,
`KW_ONLY` and keyword-only fields. For the type checker these are the standard library's.
"""

from __future__ import annotations

import _thread
import copy
import dataclasses
import operator
import reprlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
    from dataclasses import field as field
else:
    field = dataclasses.field

    def dataclass(cls: type | None = None, /, *, frozen: bool = False, **options: Any) -> Any:
        """`dataclasses.dataclass`: see the module's docstring."""
        if options:
            return dataclasses.dataclass(cls, frozen=frozen, **options)

        def wrap(cls: type) -> type:
            return _record(cls, frozen)

        return wrap if cls is None else wrap(cls)


_OWN = frozenset(
    {"__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__slots__"}
)
_PSEUDO = ("InitVar", "ClassVar", "KW_ONLY")
_LOCK = _thread.allocate_lock()  # not `threading`: its import costs validate a millisecond


def _plain(cls: type) -> bool:
    """Whether `cls` is a class this module makes exactly as the standard library would."""
    if _OWN & cls.__dict__.keys():
        return False
    if any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:]):
        return False
    for annotation in _annotations(cls).values():
        text = annotation if isinstance(annotation, str) else repr(annotation)
        if any(pseudo in text for pseudo in _PSEUDO):
            return False
    return not any(
        isinstance(value, dataclasses.Field) and value.kw_only is True
        for value in cls.__dict__.values()
    )


def _annotations(cls: type) -> dict[str, Any]:
    # The class's own, as written (strings under `from __future__ import annotations`): what
    # dataclasses reads too (inspect.get_annotations adds checks a class does not need).
    found: dict[str, Any] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    return found


def _record(cls: type, frozen: bool) -> type:
    if not _plain(cls):
        return dataclasses.dataclass(cls, frozen=frozen)
    if not cls.__dict__.get("__doc__"):
        # the standard library's docstring is the signature, computed with inspect: the names
        cls.__doc__ = f"{cls.__name__}({', '.join(_annotations(cls))})"
    # Fields only: no method generated (and nothing compiled) by the standard library. The
    # annotations are hidden from it meanwhile: for a string annotation (all of them, under
    # `from __future__ import annotations`) it matches a regex twice per field to see whether
    # it spells ClassVar or InitVar, which _plain already ruled out.
    annotations = _annotations(cls)
    cls.__annotations__ = dict.fromkeys(annotations, object)
    try:
        dataclasses.dataclass(cls, init=False, repr=False, eq=False)
    finally:
        cls.__annotations__ = annotations
    for f in cls.__dataclass_fields__.values():  # type: ignore[attr-defined]
        f.type = annotations[f.name]
    cls.__dataclass_params__ = _params(cls.__dataclass_params__, frozen)  # type: ignore[attr-defined]
    fields = dataclasses.fields(cls)
    _check_order(fields)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    shown = tuple(f.name for f in fields if f.repr)
    cls.__init__ = _lazy_init(cls, fields, frozen)  # type: ignore[misc]
    cls.__repr__ = _repr(cls, shown)  # type: ignore[method-assign]
    compare = _getter(compared)

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return compare(self) == compare(other)
        return NotImplemented

    __eq__.__qualname__ = f"{cls.__qualname__}.__eq__"
    cls.__eq__ = __eq__  # type: ignore[method-assign,assignment]
    if frozen:
        hash_of = _getter(hashed)

        def __hash__(self: Any) -> int:
            return hash(hash_of(self))

        __hash__.__qualname__ = f"{cls.__qualname__}.__hash__"
        cls.__hash__ = __hash__  # type: ignore[method-assign,assignment]
        _freeze(cls, frozenset(f.name for f in fields))
    else:
        cls.__hash__ = None  # type: ignore[method-assign,assignment]  # as dataclass(eq=True)
    return cls


_PARAMS: dict[bool, Any] = {}


def _params(made: Any, frozen: bool) -> Any:
    """The `__dataclass_params__` of `dataclass(frozen=frozen)`: the options this class was
    made with (one shared, never changed object per value of `frozen`)."""
    if frozen not in _PARAMS:
        params = copy.copy(made)
        params.init = params.repr = params.eq = True
        params.frozen = frozen
        _PARAMS[frozen] = params
    return _PARAMS[frozen]


def _check_order(fields: tuple[dataclasses.Field[Any], ...]) -> None:
    """The standard library's check at class creation, kept at class creation."""
    seen_default = False
    for f in fields:
        if not f.init:
            continue
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        if has_default:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")


def _getter(names: tuple[str, ...]) -> Any:
    """The fields' values as a tuple (a 1-tuple for one field), as the generated code builds."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        (name,) = names
        return lambda obj: (getattr(obj, name),)
    return lambda obj: ()


def _repr(cls: type, names: tuple[str, ...]) -> Any:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    __repr__.__qualname__ = f"{cls.__qualname__}.__repr__"
    return __repr__


def _freeze(cls: Any, names: frozenset[str]) -> None:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    cls.__setattr__ = __setattr__
    cls.__delattr__ = __delattr__


# Instances a class builds through the generic `__init__` below before its own is compiled:
# `validate` builds a few of each class, a render of a large fleet thousands.
_COMPILE_AFTER = 16


def _lazy_init(cls: type, fields: tuple[dataclasses.Field[Any], ...], frozen: bool) -> Any:
    """An `__init__` that binds its arguments generically (nothing compiled) for the first
    few instances, then compiles the standard library's and hands over to it. A call it does
    not bind plainly (too many arguments, an unknown or repeated keyword, a missing one) goes
    to the compiled one at once, which raises the standard library's TypeError. One
    difference, unobservable but for factories with side effects: an omitted argument's
    default_factory is called while binding, before an `init=False` field's."""
    init = [f for f in fields if f.init]
    names = tuple(f.name for f in init)
    known = frozenset(names)
    defaults = {f.name: f.default for f in init if f.default is not dataclasses.MISSING}
    factories = {
        f.name: f.default_factory for f in init if f.default_factory is not dataclasses.MISSING
    }
    later = [
        (f.name, f.default_factory)
        for f in fields
        if not f.init and f.default_factory is not dataclasses.MISSING
    ]
    order = tuple(f.name for f in fields)
    assign = object.__setattr__ if frozen else setattr
    post_init = hasattr(cls, "__post_init__")
    built = 0

    def compiled() -> Any:
        with _LOCK:
            if cls.__dict__["__init__"] is __init__:
                cls.__init__ = _compile_init(cls, fields, frozen)  # type: ignore[misc]
        return cls.__init__  # type: ignore[misc]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal built
        built += 1
        if built > _COMPILE_AFTER or len(args) > len(names):
            return compiled()(self, *args, **kwargs)  # type: ignore[no-any-return]
        values = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in known or key in values:
                return compiled()(self, *args, **kwargs)  # type: ignore[no-any-return]
            values[key] = value
        for name in names[len(args) :]:
            if name not in values:
                if name in defaults:
                    values[name] = defaults[name]
                elif name in factories:
                    values[name] = factories[name]()
                else:
                    return compiled()(self, *args, **kwargs)  # type: ignore[no-any-return]
        for name, factory in later:
            values[name] = factory()
        for name in order:
            if name in values:
                assign(self, name, values[name])
        if post_init:
            self.__post_init__()
        return None

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


_FACTORY = object()  # a parameter's default meaning "call the field's default_factory"


def _compile_init(cls: type, fields: tuple[dataclasses.Field[Any], ...], frozen: bool) -> Any:
    """The `__init__` the standard library generates for these fields (3.11's `_init_fn`)."""
    namespace: dict[str, Any] = {"__FACTORY": _FACTORY}
    params, body = ["self"], []
    for index, f in enumerate(fields):
        value = f.name
        if f.default_factory is not dataclasses.MISSING:
            namespace[f"__factory{index}"] = f.default_factory
            if f.init:
                params.append(f"{f.name}=__FACTORY")
                value = f"__factory{index}() if {f.name} is __FACTORY else {f.name}"
            else:
                value = f"__factory{index}()"
        elif not f.init:
            continue  # the class attribute holds the default (or there is none)
        elif f.default is not dataclasses.MISSING:
            namespace[f"__default{index}"] = f.default
            params.append(f"{f.name}=__default{index}")
        else:
            params.append(f.name)
        if frozen:
            body.append(f"__object_setattr(self, {f.name!r}, {value})")
        else:
            body.append(f"self.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    namespace["__object_setattr"] = object.__setattr__
    source = f"def __init__({', '.join(params)}):\n " + "\n ".join(body or ["pass"]) + "\n"
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init
