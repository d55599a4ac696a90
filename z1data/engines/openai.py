"""``openai`` engine: any OpenAI-compatible server (``vllm serve``, SGLang, hosted APIs).

Requests run concurrently on one asyncio event loop (at most ``max_concurrency`` in flight, a
semaphore) and come back to the caller one by one as they finish (``complete_iter``), so the
request cache can persist each paid response the moment it arrives. Transient failures — 429,
408/409/425, any 5xx, timeouts, dropped connections — are retried up to ``max_retries`` times with
exponential backoff and full jitter, or after the server's ``Retry-After`` when it sends one; a
request slot stays held while it backs off, which is what an overloaded server wants. A request
that still fails comes back as a :class:`Completion` with ``error="request_failed"`` (the status and
tries in ``error_detail``), never as an exception that would throw away its batch-mates' paid responses.

``api: completions`` (default) sends the prompt rendered with the teacher tokenizer's chat template,
so the exact text the model saw is known and recorded, as with the offline engines. ``api: chat``
sends the messages and lets the server template them (hosted APIs that have no completions route).
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from z1data.engines.base import Completion, Engine, SamplingParams

RETRY_STATUSES = frozenset({408, 409, 425, 429})  # plus every 5xx


def retryable(status: int) -> bool:
    return status in RETRY_STATUSES or status >= 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(
    attempt: int, base_s: float, max_s: float, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Delay before retry ``attempt`` (0-based): the server's ``Retry-After`` if given, else full jitter
    over ``base_s * 2**attempt`` (so many clients that failed together do not retry together); capped at ``max_s``."""
    if retry_after is not None:
        return min(retry_after, max_s)
    ceiling = min(max_s, base_s * 2.0**attempt)
    return (rng or random).uniform(0.5 * ceiling, ceiling)


class OpenAIEngine(Engine):
    name = "openai"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        *,
        base_url: str,
        api_key_env: str | None = None,
        api: str = "completions",
        served_model: str | None = None,
        max_concurrency: int = 16,
        max_retries: int = 5,
        timeout_s: float = 600.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        return_token_ids: bool = False,
        extra_body: dict[str, Any] | None = None,
        tokenizer: str | None = None,
        **options: Any,
    ):
        """``model`` names the tokenizer (chat template) and the model; ``served_model`` is the name the
        server knows it by (default: ``model``). The API key is read from the environment variable
        ``api_key_env`` so that it never lands in a recipe, a fingerprint or a manifest."""
        super().__init__(model, revision, **options)
        if api not in ("completions", "chat"):
            raise ValueError(f"openai engine: api must be 'completions' or 'chat', got '{api}'")
        self.base_url = base_url.rstrip("/")
        self.api = api
        self.served_model = served_model or model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.return_token_ids = return_token_ids
        self.extra_body = dict(extra_body or {})
        self.tokenizer_name = tokenizer or model
        self.headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(f"openai engine: environment variable {api_key_env} (api_key_env) is not set")
            self.headers["Authorization"] = f"Bearer {key}"
        self.stats: Counter[str] = Counter()  # http_requests, retries, ok, failed
        self._tok: Any = None
        self._rng = random.Random()

    # ------------------------------------------------------------ tokenizer
    @property
    def tokenizer(self) -> Any:
        """The teacher tokenizer, loaded on first use (a chat-API run against a hosted model needs none)."""
        if self._tok is None:
            from transformers import AutoTokenizer

            from z1data.tinymodel import resolve_model

            self._tok = AutoTokenizer.from_pretrained(resolve_model(self.tokenizer_name), revision=self.revision)
        return self._tok

    # ------------------------------------------------------------ requests
    def _sampling(self, p: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.served_model, "max_tokens": p.max_tokens, "n": 1}
        body |= {"temperature": p.temperature, "top_p": p.top_p}
        if p.top_k is not None:
            body["top_k"] = p.top_k  # not standard OpenAI; vLLM and SGLang accept it
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop:
            body["stop"] = list(p.stop)  # OpenAI's own API takes at most 4; vLLM and SGLang servers take any number
        if self.return_token_ids:
            body["return_token_ids"] = True  # vLLM >= 0.10.2
        return body | self.extra_body

    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        got = dict(self.complete_iter(prompts, params))
        return [got[i] for i in range(len(prompts))]

    def complete_iter(self, prompts: list[str], params: list[SamplingParams]) -> Iterator[tuple[int, Completion]]:
        bodies = [self._sampling(sp) | {"prompt": p} for p, sp in zip(prompts, params, strict=True)]
        yield from self._run("/completions", bodies)

    def complete_chat(
        self, messages: list[list[dict[str, str]]], params: list[SamplingParams]
    ) -> Iterator[tuple[int, Completion]]:
        if self.api != "chat":
            yield from super().complete_chat(messages, params)
            return
        bodies = [self._sampling(sp) | {"messages": m} for m, sp in zip(messages, params, strict=True)]
        yield from self._run("/chat/completions", bodies)

    def _run(self, path: str, bodies: list[dict[str, Any]]) -> Iterator[tuple[int, Completion]]:
        """Drive an event loop by hand and yield between its steps: results stream out, no thread needed."""
        if not bodies:
            return
        import httpx

        loop = asyncio.new_event_loop()
        client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self.headers,
            timeout=self.timeout_s,
            limits=httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency),
        )
        sem = asyncio.Semaphore(self.max_concurrency)
        index = {loop.create_task(self._one(client, sem, path, b)): i for i, b in enumerate(bodies)}
        pending: set[asyncio.Task[Completion]] = set(index)
        try:
            while pending:
                done, pending = loop.run_until_complete(asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED))
                for task in sorted(done, key=index.__getitem__):
                    yield index[task], task.result()
        finally:
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(client.aclose())
            loop.close()

    async def _one(self, client: Any, sem: asyncio.Semaphore, path: str, body: dict[str, Any]) -> Completion:
        import httpx

        t0 = time.perf_counter()
        reason = "unknown"
        async with sem:
            for attempt in range(self.max_retries + 1):
                retry_after = None
                self.stats["http_requests"] += 1
                try:
                    r = await client.post(path, json=body)
                except httpx.TimeoutException:
                    reason = "timeout"
                except httpx.TransportError as e:
                    reason = f"connection ({type(e).__name__})"
                else:
                    if r.status_code == 200:
                        self.stats["ok"] += 1
                        return self._parse(r, time.perf_counter() - t0)
                    reason = f"http_{r.status_code} {r.text[:200]!r}"
                    if not retryable(r.status_code):
                        break
                    retry_after = parse_retry_after(r.headers.get("retry-after"))
                if attempt == self.max_retries:
                    break
                self.stats["retries"] += 1
                await asyncio.sleep(backoff_delay(attempt, self.backoff_s, self.max_backoff_s, retry_after, self._rng))
        self.stats["failed"] += 1
        detail = f"{reason}, {attempt + 1} tries"
        return Completion("", (), "error", 0, time.perf_counter() - t0, error="request_failed", error_detail=detail)

    def _parse(self, r: Any, latency: float) -> Completion:
        """One choice of a completions or chat response; a malformed one is a failed request, not a crash."""
        try:
            data = r.json()
            choice = data["choices"][0]
            if "message" in choice:  # chat: reasoning parsers split the thinking off; Z1 keeps it in the response
                msg = choice["message"]
                reasoning = msg.get("reasoning_content") or msg.get("reasoning") or ""
                text = reasoning + (msg.get("content") or "")
            else:
                text = choice["text"]
            usage = data.get("usage") or {}
            ids = tuple(choice.get("token_ids") or ())
        except (ValueError, KeyError, IndexError, TypeError) as e:
            detail = f"malformed response ({e!r})"
            return Completion("", (), "error", 0, latency, error="request_failed", error_detail=detail)
        finish = choice.get("finish_reason")
        if finish not in ("stop", "length"):
            detail = f"finish_reason {finish!r}"
            return Completion(text, ids, "error", 0, latency, error="request_failed", error_detail=detail)
        n_prompt = int(usage.get("prompt_tokens") or len(choice.get("prompt_token_ids") or ()))
        n_done = usage.get("completion_tokens")
        n_done = None if n_done is None else int(n_done)
        return Completion(text, ids, finish, n_prompt, latency, completion_tokens=n_done)
