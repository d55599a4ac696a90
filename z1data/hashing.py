"""Stable digests and seeds: the one neutral place every layer takes them from.

Kept at the bottom of the import tree (stdlib only) so that fingerprints, the request cache, the
generate stage and the eval all agree on what "the same" means without importing each other.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def digest(obj: Any) -> str:
    """SHA-256 of an object's canonical JSON (sorted keys; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (memory flat in file size)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (recipe seed, teacher, problem id, sample index).

    Parts are joined with a separator, so ``(1, 23)`` and ``(12, 3)`` differ. Fixed forever: seeds name samples.
    """
    raw = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(raw[:4], "big") & 0x7FFFFFFF
