"""What crosses between the check driver (trusted) and the solution's process, beyond plain data.

Reference harnesses run the tests and the solution in one process; z1data keeps them apart (the solution
must not reach the asserts or the verdict), so values cross a pipe. ``plain.py`` carries builtin values;
this module adds the three things real tests pass around (stdlib only: it runs inside the sandbox):

* **Objects of trusted classes** (``{"t": "obj", "v": [class name, state]}``): classes defined by the
  problem's own code (MBPP's setup ``Node`` / ``Pair``, a prompt's helpers, a test file) exist in both
  processes, so their instances travel by value (``__dict__``) and are rebuilt under the *receiving*
  side's class: in the driver, the trusted ``__eq__`` compares them, never the solution's.
* **Types** (``{"t": "type", "v": name}``): builtin types and trusted classes, by name (``f(xs, int)``).
* **Handles** (``{"t": "ref", "v": id}``): anything else the solution returns (an instance of its own
  class, a generator, a bound method) stays in its process; the driver gets a ``RemoteRef`` whose
  attribute reads, calls, ``len``, ``iter``, indexing, ``in``, ``bool`` and ``str`` are answered by the
  solution's process, each answer crossing back under the same rules. Operators between a handle and a
  trusted value are *not* delegated (``handle == 5`` is False, ``handle < 5`` a TypeError): a lying
  ``__eq__`` or ``__sub__`` must not decide an assert. Two handles compare in the solution's process,
  with the solution's own semantics, as they would in one process.
"""

from __future__ import annotations

import builtins
import operator
import sys
from collections.abc import Callable
from typing import Any

try:
    from . import packages, plain
except ImportError:  # inside the sandbox this directory is on sys.path, not the z1data package
    import packages  # type: ignore[no-redef]
    import plain  # type: ignore[no-redef]

MAX_REFS = 100_000
BUILTIN_TYPES = {
    t.__name__: t
    for t in (int, float, str, bool, bytes, bytearray, list, tuple, dict, set, frozenset, complex, type, object)
} | {"NoneType": type(None)}


def trusted_classes(ns: dict[str, Any]) -> dict[str, type]:
    """The classes a namespace defines at top level (after running trusted code in it), by name."""
    return {k: v for k, v in ns.items() if isinstance(v, type) and not k.startswith("__")}


class ClassesIn:
    """The classes a namespace holds right now (the driver's trusted code defines them as it runs)."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self.ns = ns

    def get(self, name: str) -> type | None:
        v = self.ns.get(name)
        return v if isinstance(v, type) else None


class Codec:
    """One side's encoder/decoder: ``handles`` is the solution's table (None on the driver side)."""

    def __init__(self, trusted: dict[str, type] | ClassesIn, remote: Callable[..., Any] | None = None) -> None:
        self.trusted = trusted
        self.remote = remote  # driver side: id -> RemoteRef
        self.handles: list[Any] | None = None if remote else []

    # -- encode
    def encode(self, value: Any) -> Any:
        return plain.encode(value, 0, self._encode_ext)

    def _encode_ext(self, value: Any, depth: int) -> Any:
        t = type(value)
        if isinstance(value, type):
            name = getattr(value, "__name__", "")
            if BUILTIN_TYPES.get(name) is value or self.trusted.get(name) is value:
                return {"t": "type", "v": name}
        elif self.trusted.get(t.__name__) is t:
            try:
                state = object.__getattribute__(value, "__dict__")
            except AttributeError:
                state = {}
            items = [[k, plain.encode(v, depth, self._encode_ext)] for k, v in dict.items(state) if type(k) is str]
            return {"t": "obj", "v": [t.__name__, items]}
        if isinstance(value, RemoteRef):
            return {"t": "ref", "v": object.__getattribute__(value, "_id")}
        if packages.wanted(value) and (text := packages.dumps(value)) is not None:
            return {"t": "pkl", "v": text}  # numpy/pandas data: the driver rebuilds it (allowlisted globals)
        if self.handles is None:
            raise plain.NotPlain(f"{t.__name__} is not plain data and cannot be sent to the solution")
        if len(self.handles) >= MAX_REFS:
            raise plain.NotPlain("too many handles")
        self.handles.append(value)
        return {"t": "ref", "v": [len(self.handles) - 1, t.__module__, t.__qualname__]}

    # -- decode
    def decode(self, data: Any) -> Any:
        return plain.decode(data, 0, self._decode_ext)

    def _decode_ext(self, data: dict[str, Any], depth: int) -> Any:
        tag, v = data["t"], data["v"]
        if tag == "type" and type(v) is str:
            cls = BUILTIN_TYPES.get(v) or self.trusted.get(v)
            if cls is not None:
                return cls
        if tag == "obj" and type(v) is list and len(v) == 2 and type(v[0]) is str and type(v[1]) is list:
            cls = self.trusted.get(v[0])
            if cls is not None:
                obj = object.__new__(cls)
                state = object.__getattribute__(obj, "__dict__")
                for pair in v[1]:
                    if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                        raise ValueError("bad object state")
                    state[pair[0]] = plain.decode(pair[1], depth, self._decode_ext)
                return obj
        if tag == "pkl" and type(v) is str:
            return packages.loads(v, trusted=self.remote is None)  # from the driver, or allowlisted
        ref = type(v) is list and len(v) == 3 and type(v[0]) is int and type(v[1]) is type(v[2]) is str
        if tag == "ref" and self.remote is not None and ref:
            return self.remote(v[0], _known_class(v[1], v[2]))
        if tag == "ref" and type(v) is int and self.handles is not None and 0 <= v < len(self.handles):
            return self.handles[v]
        raise ValueError(f"bad encoded value with tag {tag!r}")


def _known_class(module: str, qualname: str) -> type | None:
    """The driver's own class a handle's value claims, when the driver already imported that module (the
    test imported pandas, matplotlib...; nothing is imported on the solution's say-so), so that
    ``isinstance(handle, plt.Axes)`` holds as in one process. A class of the solution's own is not found, and
    numpy/pandas classes are never granted: their values travel by value, so a handle claiming one is a fake."""
    obj: Any = sys.modules.get(module)
    if module.split(".", 1)[0] in packages.BY_VALUE or module.startswith("__"):
        return None
    for part in qualname.split(".") if obj is not None else []:
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) and obj is not RemoteRef else None


# ---------------------------------------------------------------- solution side: answer one request
#: Single-object queries the driver may ask of a handle; the answer crosses back as data or a handle.
QUERIES: dict[str, Callable[..., Any]] = {
    "len": len,
    "iter": iter,
    "next": next,
    "bool": bool,
    "str": str,
    "repr": repr,
    "hash": hash,
    "getitem": operator.getitem,
    "setitem": operator.setitem,
    "delitem": operator.delitem,
    "contains": operator.contains,
    "getattr": getattr,
    "setattr": setattr,
    "delattr": delattr,
    "isinstance": lambda cls, obj: isinstance(obj, cls),
}
#: Binary operators, run only between two handles (the solution's own objects on both sides).
BINARY = {
    name: getattr(operator, name)
    for name in ("eq", "ne", "lt", "le", "gt", "ge", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow")
}


def answer(codec: Codec, ns: dict[str, Any], req: dict[str, Any]) -> Any:
    """Run one request from the driver in the solution's namespace: ``call`` (a name or a handle),
    a ``QUERIES`` entry on a handle, or a ``BINARY`` operator on two handles. Raises what the code raises."""
    op = req.get("op", "call")
    args = codec.decode(req.get("args", []))
    if op == "call":
        target = req.get("fn")
        fn = ns.get(target) if isinstance(target, str) else codec.decode(target)
        if not callable(fn):
            raise NameError(f"name {target!r} is not defined")
        return fn(*args, **codec.decode(req.get("kwargs", {"t": "dict", "v": []})))
    if op in QUERIES:
        return QUERIES[op](*args)
    if op in BINARY and len(args) == 2:
        return BINARY[op](*args)
    if op == "global" and args and isinstance(args[0], str):
        if args[0] not in ns:
            raise AttributeError(f"module 'solution' has no attribute {args[0]!r}")
        return ns[args[0]]
    raise ValueError(f"unknown request {op!r}")


# ---------------------------------------------------------------- driver side: a handle
class RemoteRef:
    """A value that lives in the solution's process. Every operation is a request over ``rpc``."""

    __slots__ = ("_cls", "_id", "_rpc")

    def __init__(self, rpc: Any, ref_id: int, cls: type | None = None) -> None:
        object.__setattr__(self, "_rpc", rpc)
        object.__setattr__(self, "_id", ref_id)
        object.__setattr__(self, "_cls", cls)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() consults it: a remote Axes is an Axes to the tests
        return object.__getattribute__(self, "_cls") or RemoteRef

    def _ask(self, op: str, *args: Any) -> Any:
        return object.__getattribute__(self, "_rpc").request(op, [self, *args])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # protocol lookups (pytest, copy, pickle) are not forwarded
        return self._ask("getattr", name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._ask("setattr", name, value)

    def __delattr__(self, name: str) -> None:
        self._ask("delattr", name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return object.__getattribute__(self, "_rpc").call(self, args, kwargs)

    def __len__(self) -> int:
        n = self._ask("len")
        if type(n) is not int:
            raise TypeError("__len__ should return an int")
        return n

    def __iter__(self) -> Any:
        it = self._ask("iter")
        while True:
            try:
                yield it._ask("next") if isinstance(it, RemoteRef) else next(it)
            except StopIteration:
                return

    def __bool__(self) -> bool:
        return self._ask("bool") is True

    def __str__(self) -> str:
        s = self._ask("str")
        return s if type(s) is str else "<remote object>"

    def __repr__(self) -> str:
        s = self._ask("repr")
        return s if type(s) is str else "<remote object>"

    def __hash__(self) -> int:
        h = self._ask("hash")
        return h if type(h) is int else 0

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ask("setitem", key, value)

    def __delitem__(self, key: Any) -> None:
        self._ask("delitem", key)

    def __contains__(self, item: Any) -> bool:
        return self._ask("contains", item) is True

    def __instancecheck__(self, obj: Any) -> bool:  # isinstance(x, SolutionClass)
        return self._ask("isinstance", obj) is True

    def _binary(self, op: str, other: Any) -> Any:
        if not isinstance(other, RemoteRef):
            return NotImplemented  # never let the solution's operator decide against trusted data
        return object.__getattribute__(self, "_rpc").request(op, [self, other])


# ``handle <op> other``: run in the solution's process only when ``other`` is a handle too (``_binary``)
for _op in ("eq", "ne", "lt", "le", "gt", "ge", "add", "sub", "mul"):
    setattr(RemoteRef, f"__{_op}__", lambda self, other, _op=_op: self._binary(_op, other))


def builtin_exception(kind: str, text: str) -> BaseException:
    """The driver-side exception for one the solution raised: the builtin of that name, else RuntimeError."""
    exc = getattr(builtins, kind, None)
    if isinstance(exc, type) and issubclass(exc, Exception):
        try:
            return exc(text)
        except Exception:
            pass
    return RuntimeError(f"{kind}: {text}")
