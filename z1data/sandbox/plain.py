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
        members = list(set.__iter__(value))
        items = [encode(x, d, ext) for x in members]
        slots = _slots(value, members)
        return (
            {"t": "set", "v": items}
            if slots is None
            else {"t": "tset", "v": [len(slots) and _table_size(value), items, slots]}
        )
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
            return {decode(x, d, ext) for x in _list(v)}
        if tag == "tset" and type(v) is list and len(v) == 3 and type(v[0]) is int and 0 <= v[0] <= _MAX_TABLE:
            items, slots = [decode(x, d, ext) for x in _list(v[1])], _list(v[2])
            if len(slots) == len(items) and all(type(i) is int and 0 <= i < v[0] for i in slots):
                return _ordered_set(items, v[0], slots)
            raise ValueError("bad set layout")
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
    except (TypeError, OverflowError) as e:  # an unhashable key or set member; a complex out of float range
        raise ValueError(str(e)) from None
    raise ValueError(f"bad encoded value with tag {tag!r}")


_SMALL = 8  # CPython's PySet_MINSIZE: a set's table starts (inline) at 8 slots
_MAX_TABLE = 1 << 20  # a bigger table crosses without its layout: rebuilding it costs a filler per slot
_MAX_LAYOUT = 4096  # members: a bigger set crosses without its layout (order may then differ)


def _table_size(s: set[Any]) -> int:
    """Slots in ``s``'s hash table: its iteration order depends on it, not only on its members."""
    extra = set.__sizeof__(s) - set.__sizeof__(set())
    return extra // 16 if extra > 0 else _SMALL  # 16 bytes a slot (key, hash) on 64-bit CPython


def _slots(s: set[Any], members: list[Any]) -> list[int] | None:
    """Each member's slot in ``s``'s hash table, read from the object (CPython's ``PySetObject``: fill,
    used, mask, table after the header); None when the layout cannot be read and checked."""
    if not 0 < len(members) <= _MAX_LAYOUT or _table_size(s) > _MAX_TABLE:
        return None
    try:
        import ctypes

        _fill, used, mask, table = (ctypes.c_ssize_t * 4).from_address(id(s) + 16)
        if used != len(members) or mask + 1 != _table_size(s) or not table:
            return None
        entries = (ctypes.c_ssize_t * (2 * (mask + 1))).from_address(table)
        where = {entries[2 * i]: i for i in range(mask + 1) if entries[2 * i]}
        slots = [where.get(id(x), -1) for x in members]
    except Exception:
        return None
    return slots if -1 not in slots and slots == sorted(slots) else None


def _probe(h: int, mask: int) -> Any:
    """CPython's set probe sequence for hash ``h`` (``set_add_entry``: 9 linear probes, then perturbation)."""
    perturb = h & 0xFFFFFFFFFFFFFFFF
    i = perturb & mask
    while True:
        yield from range(i, i + (10 if i + 9 <= mask else 1))
        perturb >>= 5
        i = (i * 5 + 1 + perturb) & mask


def _ordered_set(items: list[Any], table: int, slots: list[int]) -> set[Any]:
    """A set laid out as the sender's was (same table size, each member in its slot), so it iterates in the
    same order, as it would have in one process: both processes hash alike (forked from one worker).

    A new member takes the first free slot of its probe sequence. So every slot a member's sequence passes
    before its own must be taken when it is added: by a member that goes there (added first), or by a
    blocker (an int whose hash is that slot, added before all members and removed at the end, as the
    sender's deleted members were). The first quarter of the keys comes from a dict, which presizes the
    table to ``table`` slots (fillers make up a small set's quarter). Falls back to a plain set (members
    right, order maybe not) when no such order exists."""
    mask, targets = table - 1, set(slots)
    if len(targets) != len(items) or len(set(map(id, items))) != len(items):
        return set(items)
    before = []
    for x, slot in zip(items, slots, strict=True):
        path = []
        for i in _probe(hash(x), mask):
            if i == slot:
                break
            path.append(i)
            if len(path) > table:  # its slot is not on its probe sequence: not a real layout
                return set(items)
        before.append(path)
    blocked = sorted({i for path in before for i in path} - targets)
    if (len(items) + len(blocked)) * 5 >= mask * 3:
        return set(items)  # so full a table would have grown
    order, placed, todo = [], set(blocked), list(zip(items, slots, before, strict=True))
    while todo:
        ready = [t for t in todo if all(i in placed for i in t[2])]
        if not ready:
            return set(items)  # members that each need the other first: deletions shaped it
        for x, slot, _ in ready:
            order.append(x)
            placed.add(slot)
        todo = [t for t in todo if t[1] not in placed]
    far = table << 32  # blockers: ints with the slot's hash and no member's value (ints hash to themselves)
    blockers = [slot + far for slot in blocked]
    keys = [*blockers, *order]
    # a dict of this many keys presizes a set to ``table`` slots (a set resizes for 5 keys or more)
    quarter = max(table // 4, 5) if table > _SMALL else 0
    fillers = [object() for _ in range(max(0, quarter - len(keys)))]
    s: set[Any] = set()
    s.update(dict.fromkeys([*keys[:quarter], *fillers]))  # the smallest table over twice the keys
    for x in keys[quarter:]:
        s.add(x)
    for b in [*blockers, *fillers]:
        s.discard(b)
    ok = _table_size(s) == table and all(a is b for a, b in zip(s, items, strict=True))
    return s if ok else set(items)


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
