"""Request cache: records survive reopen and SIGKILL, torn lines are ignored and never swallow the next
record, only missing requests are sent, failures are not cached, a half-failed batch duplicates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from z1data.hashing import digest
from z1data.recipe import PromptConfig, Sampling, TeacherConfig
from z1data.records import CheckTests, Problem, Tests
from z1data.teachers import make_teacher
from z1data.teachers.base import Generation, Request, Teacher
from z1data.teachers.cache import (
    CacheLockedError,
    RequestCache,
    decode_record,
    encode_record,
    generate_with_cache,
    read_records,
)

TESTS = Tests(check=CheckTests("def check(c):\n    pass\n", "f"))


def gen(text: str) -> Generation:
    return Generation("p", text, len(text), "stop", 0.5)


class CountingTeacher(Teacher):
    """A cacheable teacher that answers ``answer:<question>#<k>`` and fails the questions in ``fail``."""

    backend = "fake"
    cacheable = True

    def __init__(self, fail: set[str] | None = None, stream_reversed: bool = False) -> None:
        super().__init__(TeacherConfig(name="fake", backend="replay", replay={"kind": "jsonl", "path": "x"}), None, 1)  # type: ignore[arg-type]
        self.fail = fail or set()
        self.sent: list[str] = []
        self.stream_reversed = stream_reversed

    def expand(self, problem: Problem) -> list[Request]:
        return [Request(problem, (("user", problem.question),), k, 100 + k) for k in range(2)]

    def render(self, r: Request) -> str:
        return f"Q: {r.problem.question}"

    def request_key(self, r: Request, prompt: str) -> str:
        return digest([prompt, r.seed, r.sample_index])

    def generate(self, requests: list[Request]) -> list[Generation]:
        return [g for _, g in sorted(self.generate_iter(requests), key=lambda x: x[0])]

    def generate_iter(self, requests: list[Request]):  # type: ignore[no-untyped-def]
        order = list(enumerate(requests))
        for i, r in order[::-1] if self.stream_reversed else order:
            self.sent.append(f"{r.problem.id}#{r.sample_index}")
            if r.problem.question in self.fail:
                yield i, Generation(self.render(r), "", 0, "error", 0.1, "request_failed", "http_503, 6 tries")
            else:
                yield i, Generation(self.render(r), f"answer:{r.problem.question}#{r.sample_index}", 3, "stop", 0.1)


def problems(n: int) -> list[Problem]:
    return [Problem(f"p{i}", f"q{i}", TESTS) for i in range(n)]


def requests(t: Teacher, n: int) -> list[Request]:
    return [r for p in problems(n) for r in t.expand(p)]


# ---------------------------------------------------------------- records
def test_record_roundtrip_and_checksum() -> None:
    line = encode_record({"t": "done", "k": "abc", "d": {"response": "é\n```x```"}})
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # newlines inside values are escaped
    assert decode_record(line) == {"t": "done", "k": "abc", "d": {"response": "é\n```x```"}}
    assert decode_record(line.replace(b"abc", b"abd")) is None  # checksum catches a changed byte
    assert decode_record(line[:-10]) is None
    assert decode_record(b"\x00\x00\x00\n") is None
    assert decode_record(b"[1, 2]\n") is None


def test_put_get_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c" / "00000.jsonl"
    with RequestCache(path) as c:
        assert "k1" not in c
        c.mark_sent(["k1", "k2"])
        c.put("k1", gen("one"), {"problem_id": "p"})
    with RequestCache(path) as c:
        assert c.get("k1") == {
            "response": "one",
            "completion_tokens": 3,
            "finish_reason": "stop",
            "latency_s": 0.5,
            "problem_id": "p",
        }
        assert "k2" not in c and c.sent_before == {"k2"}  # sent, never answered: in flight at a crash
        c.mark_sent(["k2"])
        assert c.stats["resent_after_crash"] == 1


def test_torn_last_line_is_ignored_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "00000.jsonl"
    with RequestCache(path) as c:
        c.put("a", gen("A"))
        c.put("b", gen("B"))
    whole = path.read_bytes()
    for cut in (1, 7, len(encode_record({"t": "done", "k": "b", "d": {}})) // 2):
        path.write_bytes(whole[:-cut])  # a crash inside the last write
        records, bad = read_records(path)
        assert [r["k"] for r in records] == ["a"] and bad == 1
        with RequestCache(path) as c:
            assert "a" in c and "b" not in c and c.stats["torn_tail_repaired"] == 1
            c.put("c", gen("C"))  # must start on a line of its own, not continue the torn fragment
        records, bad = read_records(path)
        assert [r["k"] for r in records] == ["a", "c"] and bad == 0


def test_corrupt_middle_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "00000.jsonl"
    path.write_bytes(
        encode_record({"t": "done", "k": "a", "d": gen_d("A")})
        + b"\x00" * 40
        + b"\n"
        + encode_record({"t": "done", "k": "b", "d": gen_d("B")})
    )
    with RequestCache(path) as c:
        assert "a" in c and "b" in c and c.stats["corrupt_lines"] == 1


def gen_d(text: str) -> dict[str, object]:
    return {"response": text, "completion_tokens": 1, "finish_reason": "stop", "latency_s": 0.0}


def test_lock_is_exclusive_and_dies_with_its_process(tmp_path: Path) -> None:
    path = tmp_path / "00000.jsonl"
    with RequestCache(path), pytest.raises(CacheLockedError, match="another process"):
        RequestCache(path).open()
    with RequestCache(path):
        pass  # released on close
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from z1data.teachers.cache import RequestCache; "
            f"RequestCache(Path({str(path)!r})).open(); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(CacheLockedError):
            RequestCache(path).open()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RequestCache(path):  # the kernel dropped the dead process's lock
        pass


WRITER = """
import sys
from pathlib import Path
from z1data.teachers.base import Generation
from z1data.teachers.cache import RequestCache
c = RequestCache(Path(sys.argv[1]), sync_every_s=3600)
c.open()
i = len(c.responses)
print("ready", flush=True)
while True:
    c.put(f"k{i}", Generation("p", "x" * (i % 5000), i, "stop", 0.0))
    i += 1
"""


def test_sigkill_mid_write_loses_at_most_the_last_record(tmp_path: Path) -> None:
    """A writer appending as fast as it can is SIGKILLed at random moments: every record that is read
    back is intact, keys are never duplicated, and appending after the kill goes on cleanly."""
    path = tmp_path / "00000.jsonl"
    seen = 0
    for delay in (0.05, 0.13, 0.21):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        records, _ = read_records(path)
        keys = [r["k"] for r in records]
        assert len(keys) == len(set(keys)) and len(keys) > seen
        assert keys == [f"k{i}" for i in range(len(keys))]  # a prefix: nothing lost in the middle
        for r in records:
            i = int(r["k"][1:])
            assert r["d"]["response"] == "x" * (i % 5000) and r["d"]["completion_tokens"] == i
        seen = len(keys)


# ---------------------------------------------------------------- generate_with_cache
def test_only_missing_requests_are_sent(tmp_path: Path) -> None:
    path = tmp_path / "00000.jsonl"
    t = CountingTeacher()
    reqs = requests(t, 5)
    with RequestCache(path) as c:
        first = generate_with_cache(t, reqs[:4], c, batch_size=3)
    assert t.sent == ["p0#0", "p0#1", "p1#0", "p1#1"]
    t2 = CountingTeacher()
    with RequestCache(path) as c:
        again = generate_with_cache(t2, reqs, c, batch_size=3)
        assert c.stats["hits"] == 4 and c.stats["sent"] == 6
    assert t2.sent == [f"p{i}#{k}" for i in range(2, 5) for k in range(2)]
    assert [g.response for g in again[:4]] == [g.response for g in first]
    assert [g.response for g in again] == [f"answer:q{i}#{k}" for i in range(5) for k in range(2)]
    assert [g.prompt for g in again] == [f"Q: q{i}" for i in range(5) for k in range(2)]


def test_failed_requests_are_not_cached_and_half_failed_batch_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "00000.jsonl"
    t = CountingTeacher(fail={"q1"}, stream_reversed=True)  # results arrive out of order
    reqs = requests(t, 3)
    with RequestCache(path) as c:
        gens = generate_with_cache(t, reqs, c, batch_size=6)
        assert c.stats["failed"] == 2 and c.stats["stored"] == 4
    assert [(g.error, g.response) for g in gens] == [
        (None, "answer:q0#0"),
        (None, "answer:q0#1"),
        ("request_failed", ""),
        ("request_failed", ""),
        (None, "answer:q2#0"),
        (None, "answer:q2#1"),
    ]
    ok = CountingTeacher()
    with RequestCache(path) as c:
        gens = generate_with_cache(ok, reqs, c, batch_size=6)
        assert c.stats["resent_after_crash"] == 2  # the failed ones were sent and never answered
    assert ok.sent == ["p1#0", "p1#1"]  # only the failures are retried
    assert len(gens) == 6 and all(g.error is None for g in gens)
    records, _ = read_records(path)
    done = [r["k"] for r in records if r["t"] == "done"]
    assert len(done) == len(set(done)) == 6


def test_fallback_caches_are_adopted(tmp_path: Path) -> None:
    old = tmp_path / "generate-old" / "00000.jsonl"
    t = CountingTeacher()
    reqs = requests(t, 3)
    with RequestCache(old) as c:
        generate_with_cache(t, reqs[:4], c, batch_size=8)
    new = tmp_path / "generate-new" / "00000.jsonl"
    t2 = CountingTeacher()
    with RequestCache(new, fallbacks=[old, tmp_path / "missing.jsonl"]) as c:
        gens = generate_with_cache(t2, reqs, c, batch_size=8)
        assert c.stats["adopted"] == 4
    assert t2.sent == ["p2#0", "p2#1"]
    assert [g.response for g in gens] == [f"answer:q{i}#{k}" for i in range(3) for k in range(2)]
    assert len([r for r in read_records(new)[0] if r["t"] == "done"]) == 6  # the new file stands alone


def test_without_cache_every_request_goes_to_the_teacher() -> None:
    t = CountingTeacher()
    gens = generate_with_cache(t, requests(t, 2), None, batch_size=1)
    assert len(gens) == 4 and len(t.sent) == 4


# ---------------------------------------------------------------- request keys
def engine_teacher(**overrides: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = {"name": "t", "backend": "openai", "model": "tiny:qwen2", "base_url": "http://x/v1"}
    return make_teacher(TeacherConfig.model_validate(base | overrides), PromptConfig(), 42)


def test_request_key_covers_what_changes_a_response() -> None:
    p = Problem("p0", "question", TESTS)
    t = engine_teacher()
    (r,) = t.expand(p)
    key = t.request_key(r, "prompt")
    assert key == engine_teacher().request_key(r, "prompt")
    assert t.request_key(r, "prompt2") != key
    assert t.request_key(Request(p, r.messages, 1, r.seed), "prompt") != key
    assert t.request_key(Request(p, r.messages, 0, r.seed + 1), "prompt") != key
    for changed in (
        {"sampling": Sampling(temperature=0.5)},
        {"model": "other", "revision": "0" * 40},  # a Hub name pinned to a commit: no lookup offline
        {"revision": "abc"},
        {"name": "t2"},
        {"served_model": "x"},
        {"api": "chat"},
        {"extra_body": {"repetition_penalty": 1.1}},
    ):
        assert engine_teacher(**changed).request_key(r, "prompt") != key, changed
    for same in (
        {"max_concurrency": 99},
        {"max_retries": 0},
        {"timeout_s": 1.0},
        {"base_url": "http://elsewhere:9/v1"},
        {"api_key_env": "KEY"},
        {"samples": 4},
    ):
        assert engine_teacher(**same).request_key(r, "prompt") == key, same


def test_engine_errors_map_to_drop_reason_and_detail() -> None:
    """An engine's reason code and detail reach the Generation as fields, with nothing parsed from a string."""
    from z1data.engines import Completion
    from z1data.teachers.engine import to_generation

    failed = Completion("", (), "error", 0, 1.5, error="request_failed", error_detail="http_503 'busy', 6 tries")
    g = to_generation("p", failed)
    assert (g.error, g.error_detail, g.finish_reason, g.latency_s) == (
        "request_failed",
        "http_503 'busy', 6 tries",
        "error",
        1.5,
    )
    g = to_generation("p", Completion("x: y", (1, 2), "stop", 3))
    assert (g.error, g.error_detail, g.response, g.completion_tokens) == (None, None, "x: y", 2)
