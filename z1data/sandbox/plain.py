"""Plain data across the sandbox boundary: a tagged JSON codec for Python's builtin value types.

Results that leave a solution's process are *data*, never objects: no pickle (unpickling runs code),
no user classes (a lying ``__eq__`` must not reach a comparison). ``encode`` runs inside the untrusted
process, so it may be lenient (subclasses of builtins are copied through the base type's own
methods, which their overrides cannot intercept); ``decode`` runs on the trusted side and is strict:
it only ever builds exact builtin types, whatever bytes it is handed.

Format: ``None``, ``bool``, ``str``, ``float`` and small ``int`` are plain JSON; ``list`` is a JSON
array; everything else is an object ``{"t": tag, "v": value}`` (tuple, dict as pairs, set, frozenset,
bytes as hex, complex, big int as hex). Stdlib only: this module is imported inside the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
_BIG = 1 << 256  # ints beyond this travel as hex: decimal conversion is quadratic and capped at 4300 digits


class NotPlain(TypeError):
    """The value (or something inside it) is not plain data."""


#: ``ext(value, depth)`` encodes what is not plain data (``bridge.py``: handles, objects of trusted classes).
Ext = Callable[[Any, int], Any] | None


def encode(value: Any, depth: int = 0, ext: Ext = None) -> Any:
    """A JSON-able form of ``value``; raises ``NotPlain`` for anything but builtin value types (or
    hands it to ``ext``, which encodes it as a tagged object or raises ``NotPlain`` itself)."""
    if depth > MAX_DEPTH:
        raise NotPlain("nested too deeply")
    t, d = type(value), depth + 1
    if value is None or t is bool:
        return value
    if isinstance(value, int):
        n = int.__index__(value)
        return n if -_BIG < n < _BIG else {"t": "int", "v": hex(n)}
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list):
        return [encode(x, d, ext) for x in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"t": "tuple", "v": [encode(x, d, ext) for x in tuple.__iter__(value)]}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[encode(k, d, ext), encode(v, d, ext)] for k, v in dict.items(value)]}
    if isinstance(value, frozenset):
        return {"t": "frozenset", "v": [encode(x, d, ext) for x in frozenset.__iter__(value)]}
    if isinstance(value, set):
        items = [encode(x, d, ext) for x in set.__iter__(value)]
        table = _table_size(value)
        return {"t": "set", "v": items} if table == _SMALL else {"t": "tset", "v": [table, items]}
    if isinstance(value, bytes | bytearray):
        return {"t": "bytes", "v": bytes(value).hex()}
    if isinstance(value, complex):
        return {"t": "complex", "v": [complex.real.__get__(value), complex.imag.__get__(value)]}
    if ext is not None:
        return ext(value, d)
    raise NotPlain(f"{t.__name__} is not plain data")


def decode(data: Any, depth: int = 0, ext: Ext = None) -> Any:
    """Rebuild a value from ``encode``'s form; only exact builtin types come out (and what ``ext`` builds
    from the tags it knows, called as ``ext(data, depth)``). Raises ``ValueError``."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    d = depth + 1
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(x, d, ext) for x in data]
    if type(data) is not dict or set(data) != {"t", "v"}:
        raise ValueError(f"not an encoded value: {type(data).__name__}")
    tag, v = data["t"], data["v"]
    try:
        if tag == "tuple":
            return tuple(decode(x, d, ext) for x in _list(v))
        if tag == "dict":
            return {decode(k, d, ext): decode(x, d, ext) for k, x in (_pair(p) for p in _list(v))}
        if tag == "set":
            return _ordered_set([decode(x, d, ext) for x in _list(v)], _SMALL)
        if tag == "tset" and type(v) is list and len(v) == 2 and type(v[0]) is int and 0 < v[0] <= _MAX_TABLE:
            return _ordered_set([decode(x, d, ext) for x in _list(v[1])], v[0])
        if tag == "frozenset":
            return frozenset(decode(x, d, ext) for x in _list(v))
        if tag == "bytes" and type(v) is str:
            return bytes.fromhex(v)
        if tag == "complex" and type(v) is list and len(v) == 2 and all(type(x) in (int, float) for x in v):
            return complex(v[0], v[1])
        if tag == "int" and type(v) is str:
            return int(v, 16)
        if ext is not None:
            return ext(data, d)
    except TypeError as e:  # an unhashable key or set member
        raise ValueError(str(e)) from None
    raise ValueError(f"bad encoded value with tag {tag!r}")


_SMALL = 8  # CPython's PySet_MINSIZE: a set's table starts (inline) at 8 slots
_MAX_TABLE = 1 << 26


def _table_size(s: set[Any]) -> int:
    """Slots in ``s``'s hash table: its iteration order depends on it, not only on its members."""
    extra = set.__sizeof__(s) - set.__sizeof__(set())
    return extra // 16 if extra > 0 else _SMALL  # 16 bytes a slot (key, hash) on 64-bit CPython


def _ordered_set(items: list[Any], table: int) -> set[Any]:
    """A set that iterates in ``items``' order, as the sender's did, where that can be rebuilt. Both
    processes hash alike (forked from one worker), so members inserted into a table of the sender's size
    (a set that grew and shrank has a bigger one; it is grown first with ints removed again) land as
    they did when inserted in a compatible order: the order given, then the reverse (a member that was
    displaced by a collision was inserted later), are tried. Otherwise a plain set: members equal, order
    may differ (docs/sandbox.md)."""
    for order in (items, items[::-1]):
        s = _presized(table)
        for x in order:
            s.add(x)
        if _table_size(s) == table and all(a is b for a, b in zip(s, items, strict=True)):
            return s
    return set(items)


def _presized(table: int) -> set[Any]:
    """An empty set whose hash table has ``table`` slots (a dict argument presizes a set's table)."""
    if table > _SMALL:
        for k in range(table // 4, table // 2 + 1):
            s: set[Any] = set()
            s.update(dict.fromkeys(range(k)))
            if _table_size(s) == table:
                for i in range(k):
                    s.discard(i)  # their slots become dummies, which later members reuse as free slots
                return s
    return set()


def _list(v: Any) -> list[Any]:
    if type(v) is not list:
        raise ValueError("expected a list")
    return v


def _pair(p: Any) -> list[Any]:
    if type(p) is not list or len(p) != 2:
        raise ValueError("expected a [key, value] pair")
    return p


def dumps(value: Any) -> str:
    return json.dumps(encode(value))


def loads(text: str | bytes) -> Any:
    """Strictly decode ``dumps`` output; ``ValueError`` on anything else (bad JSON, tags, nesting)."""
    try:
        return decode(json.loads(text))
    except RecursionError:
        raise ValueError("nested too deeply") from None
