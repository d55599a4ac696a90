"""Third-party packages in the sandbox: an interpreter environment mounted read-only (``make_sandbox(env=...)``).

Without one, ``import numpy`` ends as ``runtime_error`` naming the module. With one (this test process's own
venv, which has numpy), the solution and the check driver import from it. Hostile solutions cannot write
into it, replace a module for later executions, or follow its symlinks out to the host; the destructive ones
run against a throw-away env in ``tmp_path`` (world-writable, so only the read-only mount stops them).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from z1data.judge import judge
from z1data.records import CallCase, CallTests, CheckTests, FileTests, Problem, StdioCase
from z1data.records import Tests as Spec
from z1data.sandbox import Limits, SandboxUnavailable, describe, make_sandbox
from z1data.sandbox.bwrap import ENV_SITE, env_identity, env_site

pytest.importorskip("numpy", reason="the project's venv is the env under test and must have numpy")

REPO = Path(__file__).resolve().parents[2]
VER = f"python{sys.version_info.major}.{sys.version_info.minor}"
LIM = Limits(time_s=2.0, memory_mb=512)
NUMPY_CALL = Problem("p-np", "q", Spec(call=CallTests("f", [CallCase.of([[1, 2, 3]], 6), CallCase.of([[4]], 4)])))
NUMPY_SOLUTION = "import numpy as np\ndef f(xs):\n    return int(np.sum(np.array(xs)))\n"
ERRS = {"EROFS", "EACCES", "EPERM"}


def stdio(expected: str) -> Problem:
    return Problem("p-out", "q", Spec(stdio=[StdioCase("", expected)]))


def out(sb, code: str) -> str:
    res = sb.run(code, "", LIM)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def bare():
    with make_sandbox(workers=1, calibrate=False) as sb:
        yield sb


@pytest.fixture(scope="module")
def venv():
    with make_sandbox(workers=1, calibrate=False, env=sys.prefix) as sb:
        yield sb


@pytest.fixture(scope="module")
def fake_env(tmp_path_factory):
    """A throw-away env: one genuine module, world-writable files, and symlinks pointing out to the host."""
    root = tmp_path_factory.mktemp("env")
    site = root / "lib" / VER / "site-packages"
    (site / "genuine_pkg-1.0.dist-info").mkdir(parents=True)
    (site / "genuine_pkg-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: genuine-pkg\nVersion: 1.0\n"
    )
    (site / "genuine.py").write_text("VALUE = 'genuine'\n")
    (site / "leak_readme").symlink_to(REPO / "README.md")
    (site / "leak_hostname").symlink_to("/etc/hostname")
    (site / "leak_home").symlink_to(Path.home())
    (site / "leak_repo").symlink_to(REPO)
    for p in [site, *site.iterdir()]:
        if not p.is_symlink():
            p.chmod(0o777 if p.is_dir() else 0o666)
    return root


@pytest.fixture(scope="module")
def fake(fake_env):
    with make_sandbox(workers=1, calibrate=False, env=fake_env) as sb:
        yield sb


# ---------------------------------------------------------------- without and with an env
def test_without_env_an_import_is_a_runtime_error_naming_the_module(bare):
    v = judge(NUMPY_CALL, NUMPY_SOLUTION, "s", bare, LIM)
    assert v.status == "runtime_error" and not v.passed, v
    assert "ModuleNotFoundError: No module named 'numpy'" in v.tests[0].detail, v
    assert "env" not in describe(bare)


def test_with_env_the_solution_imports_numpy(venv):
    v = judge(NUMPY_CALL, NUMPY_SOLUTION, "s", venv, LIM)
    assert v.passed, v
    assert out(venv, "import numpy\nprint(numpy.__file__)").startswith(f"{ENV_SITE}/numpy/")


def test_with_env_the_check_driver_imports_numpy_too(venv):
    check = "import numpy as np\ndef check(candidate):\n    assert candidate([1, 2, 3]) == int(np.sum(np.arange(4)))\n"
    assert judge(Problem("p", "q", Spec(check=CheckTests(check, "f"))), NUMPY_SOLUTION, "s", venv, LIM).passed
    test_file = "import numpy as np\nfrom solution import f\n\ndef test_f():\n    assert f([2, 3]) == np.int64(5)\n"
    v = judge(Problem("p", "q", Spec(file=FileTests(test_file))), NUMPY_SOLUTION, "s", venv, LIM)
    assert v.passed, v


def test_describe_records_the_env_and_what_it_holds(venv):
    d = describe(venv)["env"]
    assert d["path"] == sys.prefix and d["site_packages"] == env_site(sys.prefix)
    assert d["python"] == VER.removeprefix("python")
    assert any(x.lower().startswith("numpy==") for x in d["distributions"])


def test_unisolated_mode_gets_the_host_path():
    with make_sandbox("none", workers=1, calibrate=False, env=sys.prefix) as sb:
        assert out(sb, "import numpy\nprint(numpy.__file__)").startswith(env_site(sys.prefix))


# ---------------------------------------------------------------- hostile, with an env mounted
PROBE = """
import ctypes, errno, json, os
site, out = {site!r}, {{}}
def attempt(name, fn):
    try:
        fn()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
{attempts}
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.mount(None, site.encode(), None, ctypes.c_ulong(0x20 | 0x1000), None)  # MS_REMOUNT | MS_BIND: rw
out["remount"] = "ok" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
print(json.dumps(out))
"""


def probe(sb, attempts: str) -> dict[str, str]:
    return json.loads(out(sb, PROBE.format(site=ENV_SITE, attempts=attempts)))


def test_the_real_env_is_read_only(venv):
    """Non-destructive probes only (this is the project's own venv): opening for append writes nothing."""
    got = probe(
        venv,
        "attempt('append', lambda: open(site + '/numpy/__init__.py', 'ab').close())\n"
        "attempt('create', lambda: open(site + '/z1_hostile_probe.pth', 'x').close())\n"
        "attempt('mkdir', lambda: os.mkdir(site + '/z1_hostile_probe'))\n",
    )
    assert set(got.values()) <= ERRS, got
    assert not (Path(env_site(sys.prefix)) / "z1_hostile_probe.pth").exists()
    assert not (Path(env_site(sys.prefix)) / "z1_hostile_probe").exists()


def test_cannot_write_or_replace_a_module_for_later_executions(fake, fake_env):
    site = Path(env_site(fake_env))
    got = probe(
        fake,
        "attempt('overwrite', lambda: open(site + '/genuine.py', 'w').write('VALUE = \"evil\"\\n'))\n"
        "attempt('create', lambda: open(site + '/evil.py', 'w').write('x = 1\\n'))\n"
        "attempt('pth', lambda: open(site + '/evil.pth', 'w').write('import evil\\n'))\n"
        "attempt('shadow_pkg', lambda: os.mkdir(site + '/genuine'))\n"
        "attempt('pycache', lambda: os.mkdir(site + '/__pycache__'))\n"
        "attempt('rename', lambda: os.rename(site + '/genuine.py', site + '/gone.py'))\n"
        "attempt('unlink', lambda: os.unlink(site + '/genuine.py'))\n"
        "attempt('chmod', lambda: os.chmod(site + '/genuine.py', 0o755))\n",
    )
    # the files are world-writable on the host: only the read-only mount refuses
    assert {k: v for k, v in got.items() if k != "remount"} == dict.fromkeys(got.keys() - {"remount"}, "EROFS"), got
    assert got["remount"] in ERRS, got
    assert (site / "genuine.py").read_text() == "VALUE = 'genuine'\n"
    assert sorted(p.name for p in site.iterdir()) == sorted(
        ["genuine.py", "genuine_pkg-1.0.dist-info", "leak_home", "leak_hostname", "leak_readme", "leak_repo"]
    )
    # the same process may patch its own copy; the next execution imports the genuine module again
    assert out(fake, "import genuine\ngenuine.VALUE = 'evil'\nprint(genuine.VALUE)") == "evil\n"
    assert out(fake, "import genuine\nprint(genuine.VALUE, genuine.__file__)") == f"genuine {ENV_SITE}/genuine.py\n"


READ = """
import json, os
def look(path):
    try:
        return open(path).read() if os.path.isfile(path) else sorted(os.listdir(path))
    except OSError as e:
        return type(e).__name__
print(json.dumps({{name: look({site!r} + "/" + name) for name in {names!r}}}))
"""


def test_symlinks_in_the_env_do_not_lead_out_to_the_host(fake):
    names = ["leak_readme", "leak_hostname", "leak_home", "leak_repo"]
    got = json.loads(out(fake, READ.format(site=ENV_SITE, names=names)))
    home = got.pop("leak_home")
    assert got == dict.fromkeys(["leak_readme", "leak_hostname", "leak_repo"], "FileNotFoundError"), got
    # the home dir exists inside only when the Python install lives under it (pyenv): then it holds that path alone
    base = Path(os.path.realpath(sys.base_prefix))
    assert home in ("FileNotFoundError", list(base.relative_to(Path.home()).parts[:1]) if _under_home() else []), home


def test_cannot_see_the_home_or_the_repository(fake):
    home = [str(p) for p in Path.home().iterdir() if not str(os.path.realpath(sys.base_prefix)).startswith(str(p))]
    paths = [*home[:5], str(REPO), str(REPO / "README.md"), str(Path(sys.prefix) / "pyvenv.cfg")]
    code = f"import os\nprint([p for p in {paths!r} if os.path.exists(p)])"
    assert judge(stdio("[]\n"), code, "s", fake, LIM).passed


def _under_home() -> bool:
    return Path(os.path.realpath(sys.base_prefix)).is_relative_to(Path.home())


# ---------------------------------------------------------------- clear errors
def test_a_missing_env_is_refused_naming_the_path(tmp_path):
    missing = tmp_path / "no-such-env"
    with pytest.raises(SandboxUnavailable, match=f"{missing}.*does not exist"):
        make_sandbox(workers=1, calibrate=False, env=missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SandboxUnavailable, match=f"{tmp_path / 'empty'}.*no lib/{VER}/site-packages"):
        env_site(tmp_path / "empty")


def test_an_env_for_another_python_is_refused(tmp_path):
    other = f"python3.{sys.version_info.minor + 1}"
    (tmp_path / "prefix" / "lib" / other / "site-packages").mkdir(parents=True)
    with pytest.raises(SandboxUnavailable, match=rf"no lib/{VER}/site-packages.*found: lib/{other}/site-packages"):
        make_sandbox(workers=1, calibrate=False, env=tmp_path / "prefix")
    venv = tmp_path / "venv"
    (venv / "lib" / VER / "site-packages").mkdir(parents=True)  # right layout, wrong interpreter
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = 3.{sys.version_info.minor + 1}.0\n")
    with pytest.raises(SandboxUnavailable, match=rf"{venv} is a venv of Python 3\.{sys.version_info.minor + 1}\.0"):
        env_site(venv)


def test_preflight_names_the_recipe_key(tmp_path):
    from z1data.preflight import Need, problem

    why = problem(Need("verify.sandbox_env", "env", str(tmp_path / "gone")))
    assert (
        why and why.startswith("verify.sandbox_env: ") and "does not exist" in why and "set verify.sandbox_env" in why
    )
    assert problem(Need("verify.sandbox_env", "env", sys.prefix)) is None


def test_the_verify_fingerprint_tracks_the_env(fake_env):
    from z1data.recipe import VerifyConfig
    from z1data.stages.verify import VerifyStage

    def params(env: object) -> dict:
        return VerifyStage(VerifyConfig(sandbox_env=str(env) if env else None)).fingerprint_params()

    assert "sandbox_env" not in params(None)  # no env: the fingerprint is what it was before the key existed
    identity = {"python": VER.removeprefix("python"), "distributions": ["genuine-pkg==1.0"]}
    assert env_identity(fake_env) == identity and params(fake_env)["sandbox_env"] == identity
    dist = Path(env_site(fake_env)) / "genuine_pkg-1.0.dist-info" / "METADATA"
    dist.write_text(dist.read_text().replace("Version: 1.0", "Version: 1.1"))
    try:
        assert params(fake_env)["sandbox_env"]["distributions"] == ["genuine-pkg==1.1"]
    finally:
        dist.write_text(dist.read_text().replace("Version: 1.1", "Version: 1.0"))
