"""Root only: exec bubblewrap as an unprivileged user, with the paths it needs made reachable first.

``python -I -S launch.py SPEC bwrap ARGS...``, where SPEC is JSON ``{"uid", "gid", "root", "stage":
{name: host_path}}``. In a private mount namespace (the host's mount table is untouched) a tmpfs goes
on ``root`` and each host path is bind-mounted at ``root/name``; then groups, gid and uid are dropped
and bwrap is exec'd. Why: sandboxed processes of host uid 0 are exempt from ``RLIMIT_NPROC`` (no
fork-bomb cap), and ``nobody`` cannot traverse e.g. ``/root`` to reach a pyenv Python. Stdlib only.
"""

import ctypes
import json
import os
import sys

CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x20000, 2, 4, 0x1000, 0x4000, 0x40000
libc = ctypes.CDLL(None, use_errno=True)


def mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if s is None else s.encode() for s in (src, target, fstype, data)]
    if libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def main() -> None:
    spec = json.loads(sys.argv[1])
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNS): {os.strerror(err)}")
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    # open the sources first: one may live under the root the tmpfs is about to cover (a repo in /tmp)
    sources = {name: os.open(path, os.O_PATH) for name, path in spec["stage"].items()}
    mount("tmpfs", spec["root"], "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
    for name, fd in sources.items():
        target = os.path.join(spec["root"], name)
        os.mkdir(target, 0o755)
        mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        os.close(fd)
    os.setgroups([])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    os.execv(sys.argv[2], sys.argv[2:])


if __name__ == "__main__":
    main()
