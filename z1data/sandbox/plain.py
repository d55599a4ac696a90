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
from typing import Any

MAX_DEPTH = 100
_BIG = 1 << 256  # ints beyond this travel as hex: decimal conversion is quadratic and capped at 4300 digits


class NotPlain(TypeError):
    """The value (or something inside it) is not plain data."""


def encode(value: Any, depth: int = 0) -> Any:
    """A JSON-able form of ``value``; raises ``NotPlain`` for anything but builtin value types."""
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
        return [encode(x, d) for x in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"t": "tuple", "v": [encode(x, d) for x in tuple.__iter__(value)]}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[encode(k, d), encode(v, d)] for k, v in dict.items(value)]}
    if isinstance(value, set | frozenset):
        tag = "frozenset" if isinstance(value, frozenset) else "set"
        items = frozenset.__iter__(value) if tag == "frozenset" else set.__iter__(value)
        return {"t": tag, "v": [encode(x, d) for x in items]}
    if isinstance(value, bytes | bytearray):
        return {"t": "bytes", "v": bytes(value).hex()}
    if isinstance(value, complex):
        return {"t": "complex", "v": [complex.real.__get__(value), complex.imag.__get__(value)]}
    raise NotPlain(f"{t.__name__} is not plain data")


def decode(data: Any, depth: int = 0) -> Any:
    """Rebuild a value from ``encode``'s form; only exact builtin types come out. Raises ``ValueError``."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    d = depth + 1
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(x, d) for x in data]
    if type(data) is not dict or set(data) != {"t", "v"}:
        raise ValueError(f"not an encoded value: {type(data).__name__}")
    tag, v = data["t"], data["v"]
    try:
        if tag == "tuple":
            return tuple(decode(x, d) for x in _list(v))
        if tag == "dict":
            return {decode(k, d): decode(x, d) for k, x in (_pair(p) for p in _list(v))}
        if tag == "set":
            return {decode(x, d) for x in _list(v)}
        if tag == "frozenset":
            return frozenset(decode(x, d) for x in _list(v))
        if tag == "bytes" and type(v) is str:
            return bytes.fromhex(v)
        if tag == "complex" and type(v) is list and len(v) == 2 and all(type(x) in (int, float) for x in v):
            return complex(v[0], v[1])
        if tag == "int" and type(v) is str:
            return int(v, 16)
    except TypeError as e:  # an unhashable key or set member
        raise ValueError(str(e)) from None
    raise ValueError(f"bad encoded value with tag {tag!r}")


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
