"""A resumable, watchable engine for eval runs: every finished request is journaled and progress is printed.

Why: an STW sweep on a real model runs for hours and used to print nothing and write nothing until the end, so a
killed run restarted from zero. ``JournalEngine`` wraps the real engine: each completion is appended to
``generations.jsonl`` in the run directory (one line, flushed) the moment it comes back, keyed by the request
(model, prompt, sampling parameters). A re-run of the same config reads the journal and sends the engine only the
requests it lacks, so the resumed run equals an uninterrupted one (the STW logic above it is deterministic).
Requests go to the engine in chunks (the engine's batch size), so a batch engine also journals as it goes; one
plain progress line per chunk and per finished pass (requests, tokens, tokens/s, ETA) works in any log file.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from z1data.engines import Completion, Engine, SamplingParams
from z1data.hashing import digest

JOURNAL = "generations.jsonl"


def request_key(model: str, backend: str, prompt: str, params: SamplingParams) -> str:
    """What identifies one request: a journal line answers it only when all of this is the same."""
    return digest({"model": model, "backend": backend, "prompt": prompt, "params": asdict(params)})


class JournalEngine(Engine):
    """Serves journaled completions, sends the rest to ``inner`` in chunks, journals and reports each chunk."""

    def __init__(
        self,
        inner: Engine,
        path: Path,
        *,
        identity: str | None = None,
        chunk: int | None = None,
        out: TextIO | None = None,
        min_interval_s: float = 5.0,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__(inner.model, inner.revision)
        self.inner, self.path = inner, path
        self.name = inner.name
        self.identity = identity or inner.model
        self.chunk = max(1, chunk or int(getattr(inner, "batch_size", 0) or 16))
        self.out = out if out is not None else sys.stdout
        self.min_interval_s, self.clock = min_interval_s, clock
        self.label = "pass"
        self.sent = 0  # requests the inner engine received (resume tests count them)
        self.reused = 0
        self.done: dict[str, Completion] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                    self.done[row["key"]] = _completion(row["completion"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a kill: that request runs again
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a")

    @property
    def tokenizer(self) -> Any:
        return self.inner.tokenizer

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return self.inner.render_chat(messages)

    def begin(self, label: str) -> None:
        """Name the next pass in progress lines (``first pass · budget 4096``)."""
        self.label = label

    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        got = dict(self.complete_iter(prompts, params))
        return [got[i] for i in range(len(prompts))]

    def complete_iter(self, prompts: list[str], params: list[SamplingParams]) -> Iterator[tuple[int, Completion]]:
        keys = [request_key(self.identity, self.name, p, sp) for p, sp in zip(prompts, params, strict=True)]
        missing = [i for i, k in enumerate(keys) if k not in self.done]
        cached = len(prompts) - len(missing)
        self.reused += cached
        for i, k in enumerate(keys):
            if k in self.done:
                yield i, self.done[k]
        t0 = last = self.clock()
        tokens = finished = 0
        for s in range(0, len(missing), self.chunk):
            idx = missing[s : s + self.chunk]
            self.sent += len(idx)
            for j, c in self.inner.complete_iter([prompts[i] for i in idx], [params[i] for i in idx]):
                i = idx[j]
                self._journal(keys[i], c)
                tokens += c.num_tokens
                finished += 1
                yield i, c
            now = self.clock()
            if finished < len(missing) and now - last >= self.min_interval_s:
                last = now
                self._line(finished, len(missing), cached, tokens, now - t0)
        self._line(finished, len(missing), cached, tokens, self.clock() - t0, final=True)

    def _journal(self, key: str, c: Completion) -> None:
        self.done[key] = c
        self._file.write(json.dumps({"key": key, "completion": asdict(c)}) + "\n")
        self._file.flush()

    def _line(self, done: int, todo: int, cached: int, tokens: int, secs: float, final: bool = False) -> None:
        rate = tokens / secs if secs > 0 else 0.0
        parts = [f"{self.label}: {done}/{todo} requests"]
        if cached:
            parts[0] += f" (+{cached} from {JOURNAL})"
        parts += [f"{tokens} tokens", f"{secs:.1f} s", f"{rate:.1f} tok/s"]
        if not final and done and rate > 0:
            parts.append(f"ETA {secs / done * (todo - done):.0f} s")
        print(" · ".join(parts), file=self.out, flush=True)

    def close(self) -> None:
        self._file.close()
        self.inner.close()


def _completion(d: dict[str, Any]) -> Completion:
    return Completion(**{**d, "token_ids": tuple(d.get("token_ids") or ())})
