"""OpenAI-compatible engine against a real HTTP server on 127.0.0.1 that misbehaves on purpose:
429 with Retry-After, 5xx, timeouts, non-retryable 4xx; bounded concurrency; seeds and keys sent;
failed requests become dropped rows with a reason in a real build."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY
from z1data.engines import SamplingParams, make_engine
from z1data.engines.openai import OpenAIEngine, backoff_delay, parse_retry_after
from z1data.recipe import load_recipe
from z1data.run import build, plan


class Script:
    """What the server does, per prompt: a list of (status, headers, delay_s) steps, then 200s."""

    def __init__(self) -> None:
        self.steps: dict[str, list[tuple[int, dict[str, str], float]]] = {}
        self.always: dict[str, int] = {}  # prompt marker -> status for every attempt
        self.hits: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: dict[str, list[float]] = defaultdict(list)
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_s = 0.0
        self.lock = threading.Lock()


def make_handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = body.get("prompt") or json.dumps(body.get("messages"))
            with script.lock:
                script.hits[key] += 1
                script.bodies.append(body)
                script.headers.append(dict(self.headers))
                script.times[key].append(time.monotonic())
                script.in_flight += 1
                script.max_in_flight = max(script.max_in_flight, script.in_flight)
                step = script.steps.get(key, []).pop(0) if script.steps.get(key) else None
            try:
                time.sleep(script.delay_s + (step[2] if step else 0.0))
                status = next((s for m, s in script.always.items() if m in key), None)
                if status is not None:
                    return self.reply(status, {"error": "scripted"})
                if step is not None and step[0] != 200:
                    return self.reply(step[0], {"error": "scripted"}, step[1])
                return self.reply(200, self.completion(body, key))
            finally:
                with script.lock:
                    script.in_flight -= 1

        def completion(self, body: dict[str, Any], key: str) -> dict[str, Any]:
            text = f"echo[{key[-12:]}] seed={body.get('seed')}"
            finish = "length" if body["max_tokens"] <= 3 else "stop"
            hits = [i for stop in body.get("stop") or [] if (i := text.find(stop)) >= 0]
            if hits:  # as vLLM's server: the text ends before the first stop string, finish_reason "stop"
                text, finish = text[: min(hits)], "stop"
            if "messages" in body:
                choice = {"message": {"content": text, "reasoning_content": "think. "}, "finish_reason": finish}
            else:
                choice = {"text": text, "finish_reason": finish, "token_ids": [1, 2, 3]}
            return {"choices": [choice], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}

        def reply(self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(obj).encode()
            try:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def engine(url: str, **kw: Any) -> OpenAIEngine:
    opts: dict[str, Any] = {"base_url": url, "backoff_s": 0.01, "max_backoff_s": 0.05, "max_retries": 3} | kw
    e = make_engine("openai", "tiny:qwen2", **opts)
    assert isinstance(e, OpenAIEngine)
    return e


P = SamplingParams(max_tokens=16, temperature=0.7, top_p=0.9, top_k=5, seed=1234)


# ---------------------------------------------------------------- backoff helpers
def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-2") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1.5)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_backoff_is_exponential_jittered_capped() -> None:
    import random

    rng = random.Random(0)
    for attempt in range(8):
        ceiling = min(10.0, 0.5 * 2**attempt)
        for _ in range(20):
            d = backoff_delay(attempt, 0.5, 10.0, None, rng)
            assert 0.5 * ceiling <= d <= ceiling
    assert len({backoff_delay(3, 0.5, 10.0, None, rng) for _ in range(10)}) > 1  # jitter
    assert backoff_delay(0, 0.5, 10.0, retry_after=4.0) == 4.0  # the server's word wins ...
    assert backoff_delay(0, 0.5, 10.0, retry_after=99.0) == 10.0  # ... up to the cap


# ---------------------------------------------------------------- retries
def test_retries_429_and_5xx_then_succeeds(server: tuple[str, Script]) -> None:
    url, script = server
    script.steps["a"] = [(429, {"Retry-After": "0.2"}, 0.0)]
    script.steps["b"] = [(500, {}, 0.0), (502, {}, 0.0), (503, {}, 0.0)]
    e = engine(url, max_backoff_s=1.0)
    out = e.complete(["a", "b", "c"], [P, P, P])
    assert [c.error for c in out] == [None, None, None]
    assert script.hits == Counter({"a": 2, "b": 4, "c": 1})
    assert script.times["a"][1] - script.times["a"][0] >= 0.2  # Retry-After honoured
    assert out[0].text.startswith("echo[a] seed=1234") and out[0].finish_reason == "stop"
    assert out[0].token_ids == (1, 2, 3) and out[0].num_tokens == 3 and out[0].prompt_tokens == 7
    assert e.stats == Counter({"http_requests": 7, "retries": 4, "ok": 3})


def test_gives_up_after_max_retries_and_never_retries_4xx(server: tuple[str, Script]) -> None:
    url, script = server
    script.always = {"dead": 503, "bad": 400, "auth": 401}
    e = engine(url, max_retries=2)
    out = e.complete(["dead", "bad", "auth", "fine"], [P] * 4)
    assert script.hits == Counter({"dead": 3, "bad": 1, "auth": 1, "fine": 1})
    assert out[0].error == "request_failed" and out[0].error_detail is not None
    assert out[0].error_detail.startswith("http_503")
    assert "3 tries" in out[0].error_detail and out[0].finish_reason == "error" and out[0].text == ""
    assert out[1].error == "request_failed" and out[1].error_detail is not None
    assert "http_400" in out[1].error_detail and "1 tries" in out[1].error_detail
    assert out[3].error is None


def test_timeouts_are_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.steps["slow"] = [(200, {}, 1.0)]
    e = engine(url, timeout_s=0.3)
    (c,) = e.complete(["slow"], [P])
    assert c.error is None and script.hits["slow"] == 2
    script.always = {"slower": 200}
    script.delay_s = 0.5
    (c,) = engine(url, timeout_s=0.2, max_retries=1).complete(["slower"], [P])
    assert c.error == "request_failed" and c.error_detail is not None and c.error_detail.startswith("timeout")


def test_connection_refused_is_a_failed_request() -> None:
    (c,) = engine("http://127.0.0.1:9/v1", max_retries=1).complete(["x"], [P])
    assert c.error == "request_failed" and c.error_detail is not None and c.error_detail.startswith("connection")


# ---------------------------------------------------------------- concurrency, streaming, bodies
def test_concurrency_is_bounded_and_results_stream_as_they_finish(server: tuple[str, Script]) -> None:
    url, script = server
    script.delay_s = 0.1
    script.steps["p0"] = [(200, {}, 0.6)]  # the first request finishes last
    e = engine(url, max_concurrency=3)
    prompts = [f"p{i}" for i in range(9)]
    order = [i for i, _ in e.complete_iter(prompts, [P] * 9)]
    assert sorted(order) == list(range(9)) and order[-1] == 0
    assert script.max_in_flight == 3


def test_request_body_carries_sampling_seed_model_and_key(server: tuple[str, Script], monkeypatch: Any) -> None:
    url, script = server
    monkeypatch.setenv("Z1_TEST_KEY", "sekrit")
    e = engine(url, api_key_env="Z1_TEST_KEY", served_model="served", extra_body={"add_special_tokens": False})
    e.complete(["x"], [P])
    body = script.bodies[-1]
    assert body == {
        "model": "served",
        "prompt": "x",
        "max_tokens": 16,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 5,
        "seed": 1234,
        "n": 1,
        "add_special_tokens": False,
    }
    assert script.headers[-1]["Authorization"] == "Bearer sekrit"
    monkeypatch.delenv("Z1_TEST_KEY")
    with pytest.raises(ValueError, match="Z1_TEST_KEY"):
        engine(url, api_key_env="Z1_TEST_KEY")


def test_stop_strings_go_in_the_request_body(server: tuple[str, Script]) -> None:
    url, script = server
    e = engine(url)
    (c,) = e.complete(["stopper"], [SamplingParams(max_tokens=2, stop=("] seed", "\nprint("))])
    assert script.bodies[-1]["stop"] == ["] seed", "\nprint("]
    assert c.text == "echo[stopper" and c.finish_reason == "stop"  # cut by the server, even under max_tokens
    e.complete(["plain"], [SamplingParams(max_tokens=2)])
    assert "stop" not in script.bodies[-1]  # no empty list: some servers reject it


def test_chat_api_sends_messages_and_keeps_reasoning(server: tuple[str, Script]) -> None:
    url, script = server
    e = engine(url, api="chat")
    msgs = [[{"role": "user", "content": "hi"}]]
    ((i, c),) = list(e.complete_chat(msgs, [SamplingParams(max_tokens=2)]))
    assert i == 0 and c.text.startswith("think. echo[") and c.finish_reason == "length" and c.token_ids == ()
    assert script.bodies[-1]["messages"] == msgs[0] and "prompt" not in script.bodies[-1]
    # completions api: the chat is rendered with the tokenizer's template, then sent as a prompt
    ((_, c),) = list(engine(url).complete_chat(msgs, [P]))
    assert script.bodies[-1]["prompt"] == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


# ---------------------------------------------------------------- in a build
def test_build_drops_failed_requests_with_a_reason_and_resumes(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    script.always = {"truncate_number": 503}  # HumanEval/2 fails for good
    overrides = [
        "sources.0.limit=6",
        "shards=2",
        "executor.tasks=1",
        f"generate.teachers.0={{name: srv, backend: openai, model: 'tiny:qwen2', base_url: '{url}', "
        "max_retries: 1, max_concurrency: 4, samples: 2, sampling: {temperature: 1.0, max_new_tokens: 8}}",
    ]
    recipe = load_recipe(TINY, overrides)
    import z1data.engines.openai as mod

    orig = mod.OpenAIEngine.__init__

    def fast(self: OpenAIEngine, *a: Any, **kw: Any) -> None:  # millisecond backoff for the test
        orig(self, *a, **(kw | {"backoff_s": 0.01, "max_backoff_s": 0.02}))

    mp = pytest.MonkeyPatch()
    mp.setattr(mod.OpenAIEngine, "__init__", fast)
    try:
        first = build(recipe, "v", tmp_path / "a")
        sent_first = sum(script.hits.values())
        m = json.loads((first.version_dir / "manifest.json").read_text())
        gen = next(e for e in m["funnel"] if e["stage"] == "generate")
        assert gen["dropped"] == {"request_failed": 2}  # the 2 samples of HumanEval/2
        assert first.rows == 6 * 2 - 2 + 6  # + the canonical replay rows
        assert sent_first == 10 + 2 * 2  # 10 answered at once, the 2 failing requests tried twice each

        # A fresh data dir holding only that generate stage's request cache: only the failed requests go out.
        gen_dir = {r.name: r.dir for r in plan(recipe, tmp_path / "a")}["generate"]
        shutil.copytree(gen_dir / "cache", tmp_path / "b" / gen_dir.relative_to(tmp_path / "a") / "cache")
        script.always = {}
        again = build(recipe, "v", tmp_path / "b")
        assert sum(script.hits.values()) - sent_first == 2
        assert again.rows == 6 * 2 + 6
    finally:
        mp.undo()
