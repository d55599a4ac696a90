"""JSON Schema (draft 2020-12) mirrors of the Arrow record schemas in :data:`z1data.records.SCHEMAS`.

``python -m z1data.schemas_json [OUT_DIR]`` (re)writes ``schemas/<name>.schema.json`` for every
record schema; a unit test fails when the checked-in files drift from what this module produces.
The mirrors describe one row as ``pyarrow.Table.to_pylist()`` gives it: nullable fields accept
``null``, non-nullable fields are ``required``, and structs allow no other properties.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

DRAFT = "https://json-schema.org/draft/2020-12/schema"
COMMENT = "Generated from z1data.records.SCHEMAS by `python -m z1data.schemas_json`; do not edit by hand."
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "schemas"


def arrow_to_json_schema(schema: pa.Schema, title: str) -> dict[str, Any]:
    """The JSON Schema of one row of ``schema`` (a top-level object with ``additionalProperties: false``)."""
    out: dict[str, Any] = {"$schema": DRAFT, "$comment": COMMENT, "title": title}
    out.update(_object(list(schema), nullable=False))
    return out


def _object(children: list[pa.Field], *, nullable: bool) -> dict[str, Any]:
    return {
        "type": _type("object", nullable),
        "properties": {f.name: _field(f) for f in children},
        "required": [f.name for f in children if not f.nullable],
        "additionalProperties": False,
    }


def _field(f: pa.Field) -> dict[str, Any]:
    return _convert(f.type, f.nullable)


def _type(name: str, nullable: bool) -> str | list[str]:
    return [name, "null"] if nullable else name


def _convert(t: pa.DataType, nullable: bool) -> dict[str, Any]:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return {"type": _type("string", nullable)}
    if pa.types.is_boolean(t):
        return {"type": _type("boolean", nullable)}
    if pa.types.is_integer(t):
        bits = t.bit_width
        signed = pa.types.is_signed_integer(t)
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        return {"type": _type("integer", nullable), "minimum": lo, "maximum": hi}
    if pa.types.is_floating(t):
        return {"type": _type("number", nullable)}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {"type": _type("array", nullable), "items": _field(t.value_field)}
    if pa.types.is_struct(t):
        return _object([t.field(i) for i in range(t.num_fields)], nullable=nullable)
    raise TypeError(f"no JSON Schema mapping for Arrow type {t}")


def render(doc: dict[str, Any]) -> str:
    """The on-disk text of a schema: pretty, sorted keys, trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(out_dir: Path) -> list[Path]:
    """Write ``<name>.schema.json`` for every entry of ``records.SCHEMAS`` into ``out_dir``."""
    from z1data.records import SCHEMAS

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in SCHEMAS.items():
        path = out_dir / f"{name}.schema.json"
        path.write_text(render(arrow_to_json_schema(schema, name)), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else DEFAULT_OUT
    for path in write_all(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
