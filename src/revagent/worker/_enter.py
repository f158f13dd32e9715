"""The first stage inside the worker's namespaces (stdlib only; run by path with `python -I -S`).

`unshare` has already given this process a new mount, network and PID namespace (PID 1 of the new
one). This stage builds the sandbox's file system view, then drops every privilege and execs the
runner, which is the only thing the model's code ever runs in:

1. every mount below `/` becomes private (nothing propagates back to the host);
2. a small tmpfs becomes the new root; only the paths in the plan's `ro` list are bind-mounted
   into it, read-only, nosuid, nodev (the Python install, the venv's packages, the runner);
   `/tmp` is a private size-bounded tmpfs (noexec: a binary written there cannot run); `/dev` has
   null, zero, random, urandom; `/proc` is the new PID namespace's own, read-only (the parent and
   every host process are invisible; no sysctl can be written);
3. `chroot` into it; the root tmpfs is remounted read-only;
4. privileges go: as real root, the process becomes a fresh unprivileged uid/gid that owns no
   file on the host (its own RLIMIT_NPROC count); in a user namespace, every capability is dropped
   (bounding, permitted, effective, inheritable) and `no_new_privs` is set;
5. resource limits (address space, CPU, file size, open files, processes, no core) are set, and
   the runner is exec'd with the plan's minimal environment.

Under bubblewrap (`bwrap`), bwrap builds the view (steps 1-3, with pivot_root) and this stage only
mounts the noexec /tmp and makes /proc read-only with the CAP_SYS_ADMIN bwrap left it, then goes on
from step 4 (as root: the fresh uid; as a user: every capability dropped).

Any failure exits with status 97 and one line on stderr, before the runner's ready byte: the parent
reports "sandbox unavailable" (and tries the next mechanism) and runs nothing unconfined.
"""

import ctypes
import json
import os
import resource
import sys
from typing import Any

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24
LINUX_CAPABILITY_VERSION_3 = 0x20080522

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def fail(msg: str) -> None:
    sys.stderr.write(f"sandbox setup failed: {msg}\n")
    sys.stderr.flush()
    os._exit(97)


def mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else s.encode()

    if libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        fail(f"mount {src} -> {dst} ({fstype}): {os.strerror(err)}")


def bind_ro(src: str, root: str, inside: str | None = None) -> None:
    dst = root + (inside or src)
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst):
            open(dst, "w").close()
    mount(src, dst, None, MS_BIND)
    mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def drop_capabilities() -> None:
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: ignored

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(LINUX_CAPABILITY_VERSION_3, 0), (Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        fail(f"capset: {os.strerror(ctypes.get_errno())}")


def main() -> None:
    plan = json.loads(sys.argv[1])
    if plan["mechanism"] == "bwrap":
        bwrap_view(plan)
    else:
        unshare_view(plan)
    if plan["drop_uid"]:
        uid = int(plan["uid"])
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if plan["mechanism"] != "root":
        drop_capabilities()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        fail(f"no_new_privs: {os.strerror(ctypes.get_errno())}")
    if plan["drop_uid"] and os.getuid() == 0:
        fail("still root")
    limits_and_exec(plan)


def bwrap_view(plan: dict[str, Any]) -> None:
    """bubblewrap built the view (pivot_root, read-only binds, /dev, /proc); what it cannot do is
    done here with the CAP_SYS_ADMIN it left: a noexec, size-bounded /tmp and a read-only /proc."""
    mount("revagent-tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"size={plan['tmp_bytes']},mode=1777")
    mount(None, "/proc", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir("/tmp")


def unshare_view(plan: dict[str, Any]) -> None:
    root = plan["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("revagent-worker", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    os.makedirs(root + "/tmp", exist_ok=True)
    mount("revagent-tmp", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
          f"size={plan['tmp_bytes']},mode=1777")
    for src in plan["ro"]:
        bind_ro(src, root)
    for src, inside in plan["site_binds"]:
        bind_ro(src, root, inside)
    for link, target in plan.get("links", {}).items():
        os.makedirs(os.path.dirname(root + link), exist_ok=True)
        os.symlink(target, root + link)
    os.makedirs(root + "/sandbox", exist_ok=True)
    mount(plan["lib"], root + "/sandbox", None, MS_BIND)
    mount(None, root + "/sandbox", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.makedirs(root + "/dev", exist_ok=True)
    mount("revagent-dev", root + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for dev in ("null", "zero", "random", "urandom"):
        open(f"{root}/dev/{dev}", "w").close()
        mount(f"/dev/{dev}", f"{root}/dev/{dev}", None, MS_BIND)
    os.makedirs(root + "/proc", exist_ok=True)
    # read-only: no sysctl write even where the worker's uid is the host's root (`userns` as root)
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    os.chroot(root)
    os.chdir("/tmp")


def limits_and_exec(plan: dict[str, Any]) -> None:
    lim = plan["limits"]
    resource.setrlimit(resource.RLIMIT_AS, (lim["memory_bytes"], lim["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_hard_s"], lim["cpu_hard_s"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["file_bytes"], lim["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim["open_files"], lim["open_files"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim["processes"], lim["processes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.execve(plan["python"], [plan["python"], "-I", "-B", plan["runner"], *plan["site"]], plan["env"])


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as exc:  # any failure: refuse, never run unconfined
        fail(f"{type(exc).__name__}: {exc}")
