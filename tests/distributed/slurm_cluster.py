"""A throwaway single-node Slurm for the tests: munged, slurmctld and slurmd from Debian's packages.

Everything lives in one temporary folder (own munge key and socket, own ports, state, spool and logs), the
node is this machine under its short hostname, and the two partitions ``cpu`` (default) and ``gpu`` both
hold it, so a recipe's per-stage partitions resolve. ``SlurmdParameters=config_overrides`` lets the node
claim more memory than it has (nothing is enforced: no cgroups), so memory requests in the example are
accepted. Needs root (slurmd runs jobs as their user) and the packages slurmctld, slurmd, slurm-client, munge.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun")


def missing() -> str | None:
    """Why a real Slurm cannot start here, or None."""
    if os.geteuid() != 0:
        return "a real Slurm needs root (slurmd starts jobs as their user)"
    if absent := [d for d in DAEMONS if shutil.which(d) is None and not Path(f"/usr/sbin/{d}").exists()]:
        return f"{', '.join(absent)} not installed (apt-get install slurmctld slurmd slurm-client munge)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(d: Path, host: str) -> str:
    return f"""
ClusterName=z1test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.socket
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
DependencyParameters=kill_invalid_depend
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory=256000 State=UNKNOWN
PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={host} MaxTime=INFINITE State=UP
"""


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


@contextmanager
def single_node_slurm(timeout: float = 60) -> Iterator[dict[str, str]]:
    """Start the cluster; yield the environment (``SLURM_CONF``) under which sbatch reaches it."""
    d = Path(tempfile.mkdtemp(prefix="z1data-slurm-"))  # not under pytest's 0700 tmp: munged wants o+x
    d.chmod(0o755)
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "munge.key").write_bytes(os.urandom(128))
    (d / "munge.key").chmod(0o600)
    (d / "slurm.conf").write_text(_conf(d, host))
    env = {**os.environ, "SLURM_CONF": str(d / "slurm.conf")}
    munge = [f"--socket={d}/munge.socket", f"--key-file={d}/munge.key", f"--pid-file={d}/munged.pid"]
    pids: list[Path] = []
    try:
        subprocess.run([_sbin("munged"), *munge, f"--log-file={d}/munged.log", f"--seed-file={d}/munge.seed"],
                       check=True, env=env)  # fmt: skip
        pids.append(d / "munged.pid")
        subprocess.run([_sbin("slurmctld"), "-c", "-f", str(d / "slurm.conf")], check=True, env=env)
        pids.append(d / "slurmctld.pid")
        subprocess.run([_sbin("slurmd"), "-f", str(d / "slurm.conf")], check=True, env=env)
        pids.append(d / "slurmd.pid")
        deadline = time.time() + timeout
        while True:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout
            if "idle" in state or "mix" in state:
                break
            if time.time() > deadline:
                log = (d / "slurmctld.log").read_text()[-2000:] if (d / "slurmctld.log").exists() else ""
                raise RuntimeError(f"single-node Slurm did not come up in {timeout}s: sinfo {state!r}\n{log}")
            time.sleep(0.5)
        yield {"SLURM_CONF": str(d / "slurm.conf")}
    finally:
        subprocess.run(["scancel", "--full", "--partition=cpu,gpu"], env=env, capture_output=True)
        deadline = time.time() + 20  # let job steps report back, or their slurmstepd outlives slurmd
        while pids[1:] and not queue_empty({"SLURM_CONF": env["SLURM_CONF"]}) and time.time() < deadline:
            time.sleep(0.25)
        for pidfile in reversed(pids):  # slurmd, slurmctld, munged: only the daemons started here
            with suppress(FileNotFoundError, ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
            time.sleep(0.5)
        shutil.rmtree(d, ignore_errors=True)


def queue_empty(env: dict[str, str]) -> bool:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], env={**os.environ, **env}, capture_output=True, text=True)
    return out.returncode == 0 and not out.stdout.strip()
