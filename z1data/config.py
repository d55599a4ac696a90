"""The one strict YAML config loader: recipes, train configs and eval configs all read through it.

One loader so every config kind behaves the same: ``extends: parent.yaml`` (relative to the file) merges the
file over its parent (mappings merge key by key, lists and scalars replace; cycles are errors), ``--set a.b=c``
overrides parse ``c`` as YAML (``--set bucket.short_max_tokens=512`` gives an int), and every error names the
file and the key. Validation is pydantic's (``extra="forbid"`` on the models makes unknown keys errors).
Imports nothing from z1data, so any module may use it without an import cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` in place; list items are addressed by index (``sources.0.limit=5``)."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got '{assignment}'")
    key, raw = assignment.split("=", 1)
    value = yaml.safe_load(raw)
    node: Any = data
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_with_extends(path: Path, seen: tuple[Path, ...], kind: str) -> dict[str, Any]:
    """Read one YAML mapping; ``extends: other.yaml`` (relative to this file) merges this one over the other."""
    if not path.is_file():
        raise ConfigError(f"{path}: {kind} file not found" + (f" (extended by {seen[-1]})" if seen else ""))
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'extends' cycle: {' -> '.join(map(str, (*seen, path.resolve())))}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the {kind} must be a YAML mapping, got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: 'extends' must be a path to another {kind}")
    return deep_merge(_read_with_extends(path.parent / parent, (*seen, path.resolve()), kind), data)


def read_config(path: str | Path, overrides: Iterable[str] | None = None, *, kind: str = "config") -> dict[str, Any]:
    """The file's mapping with its ``extends`` chain merged and ``--set`` overrides applied, not yet validated.

    ``kind`` only words the messages ("recipe file not found").
    """
    path = Path(path)
    data = _read_with_extends(path, (), kind)
    for o in overrides or []:
        try:
            apply_override(data, o)
        except (IndexError, ValueError, TypeError, AttributeError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot apply --set {o}: {e}") from e
    return data


def error_lines(e: ValidationError, prefix: Sequence[str | int] = ()) -> list[str]:
    """One ``  a.b.c: message (got value)`` line per pydantic error; ``prefix`` roots the key path."""
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in (*prefix, *err["loc"])) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}" + (f" (got {err['input']!r})" if err["type"] != "missing" else ""))
    return lines


def validate(model_cls: type[T], data: Any, path: str | Path, *, kind: str = "config") -> T:
    """``model_cls`` (a pydantic model or a dataclass) from ``data``; errors list every bad key with the file."""
    try:
        return TypeAdapter(model_cls).validate_python(data)
    except ValidationError as e:
        raise ConfigError(f"{path}: invalid {kind}:\n" + "\n".join(error_lines(e))) from None


def load_config(
    path: str | Path, model_cls: type[T], overrides: Iterable[str] | None = None, *, kind: str = "config", **extra: Any
) -> T:
    """Read (extends, ``--set``) and validate in one call; ``extra`` keys (set by code, not YAML) are added last."""
    return validate(model_cls, {**read_config(path, overrides, kind=kind), **extra}, path, kind=kind)
