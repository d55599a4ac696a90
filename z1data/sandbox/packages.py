"""numpy and pandas values across the check boundary, by value. Stdlib only (the packages come from the
sandbox env, ``verify.sandbox_env``, and are imported only where a value needs them).

BigCodeBench-style tests compare what the solution returns with ``pd.testing.assert_frame_equal`` or
``np.testing.assert_array_equal``: those need a real DataFrame or array in the driver, not a handle. Such
values travel as a pickle, and the driver unpickles them with an allowlist: exactly the globals that
pickles of numpy and pandas values reference in *this* environment (found once by round-tripping sample
values: arrays of every dtype kind, scalars, DataFrames, Series and the index types). Anything else in
the stream (``os.system``, ``numpy.memmap``, a class the solution defined) is refused, so a pickle can
only rebuild numpy/pandas data; what cannot travel so stays behind a handle.
"""

from __future__ import annotations

import base64
import io
import pickle
import sys
from typing import Any

BY_VALUE = ("numpy", "pandas")
MAX_BYTES = 32 << 20
_ALLOWED: set[tuple[str, str]] | None = None


def wanted(value: Any) -> bool:
    """A numpy or pandas value (by its type's module)."""
    return type(value).__module__.split(".", 1)[0] in BY_VALUE


def dumps(value: Any) -> str | None:
    """The value as base64 pickle text, or None when it does not pickle (then it crosses as a handle)."""
    try:
        data = pickle.dumps(value, protocol=4)
    except Exception:
        return None
    return base64.b64encode(data).decode() if len(data) <= MAX_BYTES else None


def loads(text: str, trusted: bool) -> Any:
    """``trusted``: the sender is the driver (the solution's process may unpickle it as is); otherwise the
    sender is the solution and only the allowlisted globals may appear. Raises ``ValueError``."""
    try:
        data = base64.b64decode(text.encode(), validate=True)
        if trusted:
            return pickle.loads(data)
        return _Restricted(io.BytesIO(data)).load()
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"not a numpy/pandas value: {type(e).__name__}: {e}"[:300]) from None


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in allowed():
            raise pickle.UnpicklingError(f"{module}.{name} is not a numpy/pandas reconstructor")
        return super().find_class(module, name)


class _Recording(pickle.Unpickler):
    def __init__(self, data: bytes, seen: set[tuple[str, str]]) -> None:
        super().__init__(io.BytesIO(data))
        self.seen = seen

    def find_class(self, module: str, name: str) -> Any:
        self.seen.add((module, name))
        return super().find_class(module, name)


def allowed() -> set[tuple[str, str]]:
    """The globals numpy/pandas pickles use here: recorded from sample values, once per process."""
    global _ALLOWED
    if _ALLOWED is None:
        seen: set[tuple[str, str]] = set()
        for sample in _samples():
            try:
                _Recording(pickle.dumps(sample, protocol=4), seen).load()
            except Exception:
                continue
        _ALLOWED = seen
    return _ALLOWED


def _samples() -> list[Any]:
    out: list[Any] = []
    np = sys.modules.get("numpy") or _try_import("numpy")
    if np is not None:
        kinds = ["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"]
        kinds += ["U3", "S3", "M8[ns]", "M8[D]", "m8[ns]", "O"]
        for k in kinds:
            arr = np.zeros((2, 2), dtype=k)
            out += [arr, arr[0, 0], arr.dtype, np.asfortranarray(arr)]
        out += [np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), np.ma.masked_array([1, 2], mask=[0, 1])]
    pd = sys.modules.get("pandas") or _try_import("pandas")
    if pd is not None:
        ts = pd.Timestamp("2024-01-01")
        frame = pd.DataFrame(
            {
                "i": [1, 2],
                "f": [1.5, None],
                "s": ["a", "b"],
                "b": [True, False],
                "t": [ts, ts],
                "z": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("UTC"),
                "d": pd.to_timedelta([1, 2], unit="s"),
                "c": pd.Categorical(["x", "y"]),
                "n": pd.array([1, None], dtype="Int64"),
                "o": [[1], {"k": 2}],
            }
        )
        out += [frame, frame.set_index("s"), frame.set_index(["s", "i"]), frame["i"], frame["c"], frame.T]
        out += [pd.Index([1, 2]), pd.Index(["a"]), pd.RangeIndex(3), pd.DatetimeIndex([ts]), pd.CategoricalIndex(["a"])]
        out += [pd.MultiIndex.from_tuples([(1, "a")]), pd.interval_range(0, 2), pd.period_range("2024", periods=2)]
        out += [ts, pd.Timedelta(1, "s"), pd.NaT, pd.NA, pd.Period("2024"), pd.Interval(0, 1), pd.Series([1.0])]
        out += [
            pd.Series(["a"], dtype="string"),
            pd.Series([1], dtype="float32"),
            frame.groupby("s").sum(numeric_only=True),
        ]
    return out


def _try_import(name: str) -> Any:
    try:
        return __import__(name)
    except Exception:
        return None
