"""``transformers`` teacher: the engine teacher over ``TransformersEngine`` (CPU or one GPU).

Kept as its own class so code and tests that name it keep working; everything it does is in
:class:`z1data.teachers.engine.EngineTeacher`.
"""

from __future__ import annotations

from z1data.teachers.engine import EngineTeacher


class TransformersTeacher(EngineTeacher):
    backend = "transformers"
