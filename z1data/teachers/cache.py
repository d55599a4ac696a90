"""The request cache: every response paid for is kept, so a resumed run re-sends only what is missing.

One append-only JSONL file per (teacher, shard) under the generate stage's directory
(``cache/<teacher>/<shard>.jsonl``). Each line is one record with a checksum:

- ``{"t": "sent", "k": [keys]}`` — written just before a batch goes to the engine: the audit trail
  of what was paid for, and how a crashed run's in-flight requests are told apart on resume;
- ``{"t": "done", "k": key, "d": {response, completion_tokens, finish_reason, latency_s, ...}}`` —
  written the moment a response arrives (the openai engine streams them one by one), or copied
  from a fallback file (the same shard in another generate stage directory) that already had it.

Crash safety. A record is one ``os.write`` of a whole line on an ``O_APPEND`` descriptor, so after a
SIGKILL the file holds every completed write (the page cache survives the process); ``fsync`` after
each batch (and at most every ``sync_every_s`` seconds) covers power loss. A torn last line (a crash
inside a write, or a power loss) fails its JSON parse or its checksum and is ignored, and the file is
cut back to its last full line before anything is appended, so a torn fragment can never swallow the
next record. Rows are never made from cache lines: the stage makes one row per *request* and only
looks its response up here, so a record written twice (or a batch that half failed) cannot duplicate
a row. Failed requests are not cached: a resumed run tries them again.

A shard's file is locked (``flock``) while a process works on it; the kernel drops the lock when the
process dies, so a killed run never blocks its resume.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from z1data.teachers.base import Generation, Request, Teacher


class CacheLockedError(RuntimeError):
    """Another live process is generating the same shard for the same teacher."""


def _checksum(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def encode_record(obj: dict[str, Any]) -> bytes:
    return (json.dumps({**obj, "h": _checksum(obj)}, ensure_ascii=False) + "\n").encode()


def decode_record(line: bytes) -> dict[str, Any] | None:
    """A record, or None for a torn / corrupt line (bad JSON, missing or wrong checksum)."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    h = obj.pop("h", None)
    return obj if h == _checksum(obj) else None


def read_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Every intact record of a cache file, and how many lines were torn or corrupt."""
    if not path.exists():
        return [], 0
    records, bad = [], 0
    with path.open("rb") as f:
        for line in f:
            rec = decode_record(line) if line.endswith(b"\n") else None
            if rec is None:
                bad += 1
            else:
                records.append(rec)
    return records, bad


class RequestCache:
    """Cached responses of one teacher on one shard; a context manager that holds the shard's lock."""

    def __init__(self, path: Path, fallbacks: Iterable[Path] = (), sync_every_s: float = 1.0):
        """``fallbacks``: read-only cache files of other runs (e.g. the same shard of a generate stage
        with another fingerprint): keys are full digests, so a hit there is the same request."""
        self.path = path
        self.fallbacks = [p for p in fallbacks if p != path]
        self.sync_every_s = sync_every_s
        self.responses: dict[str, dict[str, Any]] = {}
        self.sent_before: set[str] = set()  # sent by an earlier run, never answered (in flight at a crash)
        self.stats: Counter[str] = Counter()
        self._fd: int | None = None
        self._last_sync = 0.0
        self._dirty = False

    # ------------------------------------------------------------ open / close
    def __enter__(self) -> RequestCache:
        self.open()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CacheLockedError(f"{self.path}: another process is generating this shard") from None
        self._fd = fd
        self._repair_tail()
        sent: set[str] = set()
        records, bad = read_records(self.path)
        for rec in records:
            if rec.get("t") == "done":
                self.responses[rec["k"]] = rec["d"]
            elif rec.get("t") == "sent":
                sent.update(rec["k"])
        self.sent_before = sent - self.responses.keys()
        self.stats["corrupt_lines"] += bad

    def _repair_tail(self) -> None:
        """Cut a torn last line (no newline) so the next append starts on a line of its own."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        with self.path.open("rb") as f:
            pos = size
            while pos > 0:  # scan back in blocks for the last newline
                step = min(1 << 16, pos)
                f.seek(pos - step)
                block = f.read(step)
                if pos == size and block.endswith(b"\n"):
                    return
                nl = block.rfind(b"\n")
                if nl >= 0:
                    pos = pos - step + nl + 1
                    break
                pos -= step
        os.ftruncate(self._fd, pos)
        self.stats["torn_tail_repaired"] += 1

    def close(self) -> None:
        if self._fd is not None:
            self.sync(force=True)
            os.close(self._fd)  # releases the lock
            self._fd = None

    # ------------------------------------------------------------ use
    def adopt(self, wanted: set[str]) -> int:
        """Copy the responses for ``wanted`` keys found in the fallback files into this cache.

        Read only when something is missing, and only the wanted keys are kept, so many sibling caches
        cost one pass over their files, never their memory. Adopted records are appended here, so this
        shard's own file alone holds every response its rows were made from.
        """
        wanted = wanted - self.responses.keys()
        found = 0
        for p in self.fallbacks:
            if not wanted:
                break
            for rec in read_records(p)[0]:
                if rec.get("t") == "done" and rec["k"] in wanted:
                    wanted.discard(rec["k"])
                    self._append(encode_record(rec))
                    self.responses[rec["k"]] = rec["d"]
                    found += 1
        self.stats["adopted"] += found
        return found

    def __contains__(self, key: str) -> bool:
        return key in self.responses

    def get(self, key: str) -> dict[str, Any] | None:
        return self.responses.get(key)

    def _append(self, data: bytes) -> None:
        assert self._fd is not None, "cache not open"
        view = memoryview(data)
        while view:  # a regular file takes the whole write; loop for the pathological partial write
            n = os.write(self._fd, view)
            view = view[n:]
        self._dirty = True

    def mark_sent(self, keys: list[str]) -> None:
        if keys:
            self._append(encode_record({"t": "sent", "k": keys}))
            self.stats["sent"] += len(keys)
            self.stats["resent_after_crash"] += sum(k in self.sent_before for k in keys)

    def put(self, key: str, gen: Generation, meta: dict[str, Any] | None = None) -> None:
        data = {
            "response": gen.response,
            "completion_tokens": gen.completion_tokens,
            "finish_reason": gen.finish_reason,
            "latency_s": gen.latency_s,
            **(meta or {}),
        }
        self._append(encode_record({"t": "done", "k": key, "d": data}))
        self.responses[key] = data
        self.stats["stored"] += 1
        self.sync()

    def sync(self, force: bool = False) -> None:
        """fsync, at most every ``sync_every_s`` unless forced (SIGKILL loses nothing either way)."""
        now = time.monotonic()
        if self._fd is not None and self._dirty and (force or now - self._last_sync >= self.sync_every_s):
            os.fsync(self._fd)
            self._dirty = False
            self._last_sync = now


def cached_generation(prompt: str, d: dict[str, Any]) -> Generation:
    return Generation(prompt, d["response"], int(d["completion_tokens"]), d["finish_reason"], float(d["latency_s"]))


def generate_with_cache(
    teacher: Teacher,
    requests: list[Request],
    cache: RequestCache | None,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[Generation]:
    """One Generation per request, in order: cached ones looked up, only the missing ones sent.

    Missing requests go to the teacher in batches of ``batch_size``; each response is stored the moment
    the teacher hands it back, so a crash loses only requests still in flight. Without a cache (replay)
    every request goes to the teacher.
    """
    results: list[Generation | None] = [None] * len(requests)
    if cache is None:
        todo, prompts, keys = list(range(len(requests))), [""] * len(requests), [""] * len(requests)
    else:
        prompts = [teacher.render(r) for r in requests]
        keys = [teacher.request_key(r, p) for r, p in zip(requests, prompts, strict=True)]
        if cache.fallbacks:
            cache.adopt({k for k in keys if k not in cache})
        todo = []
        for i, k in enumerate(keys):
            hit = cache.get(k)
            if hit is None:
                todo.append(i)
            else:
                results[i] = cached_generation(prompts[i], hit)
        cache.stats["hits"] += len(requests) - len(todo)
        if progress and len(requests) > len(todo):
            progress(len(requests) - len(todo))
    for start in range(0, len(todo), batch_size):
        idx = todo[start : start + batch_size]
        if cache is not None:
            cache.mark_sent([keys[i] for i in idx])
        for j, gen in teacher.generate_iter([requests[i] for i in idx]):
            i = idx[j]
            results[i] = gen
            if cache is None:
                continue
            if gen.error is not None:
                cache.stats["failed"] += 1
            else:
                r = requests[i]
                cache.put(keys[i], gen, {"problem_id": r.problem.id, "sample_index": r.sample_index, "seed": r.seed})
        if cache is not None:
            cache.sync(force=True)
        if progress:
            progress(len(idx))
    assert all(g is not None for g in results), "a teacher returned fewer generations than requests"
    return [g for g in results if g is not None]
