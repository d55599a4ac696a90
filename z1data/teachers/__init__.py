"""Teachers: the models (or stored responses) that answer a recipe's problems.

The factory lives here, not in ``base``: implementations (``engine``, ``replay``) import ``base`` only,
and this module imports each one lazily, when a recipe names its backend, so the package has no import
cycle and ``import z1data.teachers`` never loads an engine.
"""

from __future__ import annotations

from z1data.engines import ENGINE_BACKENDS
from z1data.recipe import PromptConfig, TeacherConfig
from z1data.teachers.base import Teacher

__all__ = ["Teacher", "make_teacher"]


def make_teacher(cfg: TeacherConfig, prompt: PromptConfig, seed: int) -> Teacher:
    """The teacher for ``cfg.backend``: one engine teacher for every model backend, or replay. A teacher's
    own ``prompt`` replaces the recipe's shared one."""
    prompt = cfg.prompt or prompt
    if cfg.backend in ENGINE_BACKENDS:
        from z1data.teachers.engine import EngineTeacher

        return EngineTeacher(cfg, prompt, seed)
    if cfg.backend == "replay":
        from z1data.teachers.replay import ReplayTeacher

        return ReplayTeacher(cfg, prompt, seed)
    raise ValueError(f"unknown teacher backend '{cfg.backend}'")
