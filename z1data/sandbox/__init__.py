"""Sandboxes that execute untrusted solution code: one interface, swappable implementations."""

from z1data.sandbox.base import ExecResult, Limits, Sandbox
from z1data.sandbox.subprocess import SubprocessSandbox

__all__ = ["ExecResult", "Limits", "Sandbox", "SubprocessSandbox"]
