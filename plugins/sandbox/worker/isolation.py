"""Isolation: what the worker does to itself before it is given a job (P0), and to the job's
process before any of the answer's code runs (P1).

P0, `isolate` (before any job)
------------------------------
* network: a new network namespace (only a loopback interface, and it is down);
* mounts: a new mount namespace, everything made private, then read-only, nosuid and nodev
  recursively; a fresh size-limited tmpfs on /tmp is the only writable place (cwd, HOME, TMPDIR);
  `hidden_paths` (home directories, /run, /sys, the gateway's working directory, ...) are covered by
  empty tmpfs mounts, except that the interpreter's own prefix is bound back in so imports work;
* PID, IPC and UTS namespaces;
* as root: a per-run uid and gid (P1) so RLIMIT_NPROC is enforced (it is not for root) and no file
  of any real user is writable or readable beyond world-readable; not root: a user namespace
  (outer uid mapped to 0), capabilities and the bounding set dropped in P1;
* `no_new_privs` in P1, so no setuid binary can give the answer privileges back.
Any of these failing is a refusal unless the config says `allow_unisolated`.

P1, `confine` (before any job code)
-----------------------------------
A fresh /proc (P1 is the first process of its PID namespace), the resource limits, the
unprivileged identity, `no_new_privs` and a parent-death signal.

Standard library only (`ctypes` for the system calls Python has no wrapper for).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (new syscalls share one table)

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38


class Refused(Exception):
    pass


_LIBC: _Libc | None = None


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _encode_arg(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


class _Libc:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(None, use_errno=True)
        self.lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        self.lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.lib.unshare.argtypes = [ctypes.c_int]
        self.lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def unshare(self, flags: int) -> None:
        self._check(self.lib.unshare(flags), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
        rc = self.lib.mount(_encode_arg(source), _encode_arg(target), _encode_arg(fstype), flags, _encode_arg(data))
        self._check(rc, f"mount {target}")

    def umount(self, target: str) -> None:
        self._check(self.lib.umount2(target.encode(), MNT_DETACH), f"umount {target}")

    def mount_setattr(self, path: str, recursive: bool, attr_set: int, attr_clr: int) -> None:
        attr = _MountAttr(attr_set, attr_clr, 0, 0)
        flags = AT_RECURSIVE if recursive else 0
        rc = self.lib.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), flags, ctypes.byref(attr),
                              ctypes.sizeof(attr))
        self._check(rc, f"mount_setattr {path}")

    def prctl(self, option: int, arg: int) -> None:
        self._check(self.lib.prctl(option, arg, 0, 0, 0), f"prctl {option}")

    def drop_capabilities(self) -> None:
        for cap in range(64):
            if self.lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: no such cap
                break
        header = _CapHeader(0x20080522, 0)
        data = (_CapData * 2)()
        self._check(self.lib.capset(ctypes.byref(header), data), "capset")


def _readonly_fallback(libc: _Libc) -> None:
    """Remount every mount read-only one by one (kernels before 5.12 have no mount_setattr)."""
    keep = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
    with open("/proc/self/mountinfo") as handle:
        entries = [line.split() for line in handle]
    for fields in sorted(entries, key=lambda f: f[4].count("/")):
        target = fields[4].replace("\\040", " ")
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
        for option in fields[5].split(","):
            flags |= keep.get(option, 0)
        try:
            libc.mount(None, target, None, flags, None)
        except OSError:
            if target == "/":
                raise


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def isolate(config: dict[str, Any]) -> dict[str, Any]:
    """Enter fresh namespaces and set up the filesystem view; returns what was achieved.

    Raises Refused when something required failed and `allow_unisolated` is false."""
    root = os.geteuid() == 0
    report: dict[str, Any] = {"net": False, "mount": False, "readonly": False, "pid": False, "userns": False,
                              "uid": "per-run" if root else "unchanged", "hidden": [], "problems": []}
    allow = bool(config.get("allow_unisolated"))
    if config.get("isolate") is False:
        report["problems"].append("namespaces switched off by the operator")
        return report
    global _LIBC
    try:
        libc = _LIBC = _Libc()
        if config.get("simulate_failure"):  # test hook: behave as a platform without namespaces
            raise OSError(1, "unshare: Operation not permitted (simulated)")
        flags = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
        outer_uid, outer_gid = os.geteuid(), os.getegid()
        libc.unshare(flags if root else flags | CLONE_NEWUSER)
        if not root:
            with open("/proc/self/setgroups", "w") as handle:
                handle.write("deny")
            with open("/proc/self/uid_map", "w") as handle:
                handle.write(f"0 {outer_uid} 1")
            with open("/proc/self/gid_map", "w") as handle:
                handle.write(f"0 {outer_gid} 1")
            report["userns"] = True
            report["uid"] = "userns, no capabilities"
        report["net"] = report["pid"] = True
        libc.mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        report["mount"] = True
        prefix = os.path.realpath(sys.base_prefix)
        if _inside(prefix, "/tmp"):
            raise OSError(22, f"the interpreter lives under /tmp ({prefix}), which the sandbox replaces")
        uid = int(config["uid"]) if root else 0
        size_mb = int(config.get("tmpfs_mb", 16))
        libc.mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={size_mb}m,nr_inodes=4096,mode=0700,uid={uid},gid={uid}")
        for path in sorted({os.path.realpath(p) for p in config.get("hidden_paths", [])}, key=len):
            if path in _NEVER_HIDDEN or _inside(path, "/tmp") or _inside("/tmp", path) or not os.path.isdir(path):
                continue
            if any(_inside(path, done) for done in report["hidden"]):
                continue
            keep = _inside(prefix, path)
            if keep:
                os.mkdir("/tmp/.keep", 0o700)
                libc.mount(prefix, "/tmp/.keep", None, MS_BIND | MS_REC, None)
            libc.mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=256,mode=0755")
            if keep:
                inner = path.rstrip("/") + prefix[len(path.rstrip("/")):]
                os.makedirs(inner, 0o755, exist_ok=True)
                libc.mount("/tmp/.keep", inner, None, MS_BIND | MS_REC, None)
                libc.umount("/tmp/.keep")
                os.rmdir("/tmp/.keep")
            report["hidden"].append(path)
        try:
            libc.mount_setattr("/", True, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0)
        except OSError as exc:
            if exc.errno != 38:  # ENOSYS: a kernel before 5.12
                raise
            _readonly_fallback(libc)
            libc.mount(None, "/tmp", None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        else:
            libc.mount_setattr("/tmp", False, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_RDONLY)
            # /dev/null, /dev/zero, /dev/urandom must open; the rest of /dev is root-only by mode.
            libc.mount_setattr("/dev", False, 0, MOUNT_ATTR_NODEV)
        report["readonly"] = True
        os.chdir("/tmp")
    except (OSError, ValueError) as exc:
        report["problems"].append(str(exc))
        if not allow:
            raise Refused(f"isolation unavailable: {exc}") from None
    if not report["readonly"] and config.get("workdir"):
        os.chdir(config["workdir"])
    return report


_NEVER_HIDDEN = frozenset({"/", "/proc", "/dev", "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc"})


def confine(config: dict[str, Any], report: dict[str, Any], libc: _Libc) -> None:
    """P1, before any job code: fresh /proc, resource limits, an unprivileged identity."""
    import resource

    if report["pid"] and report["mount"]:
        try:
            libc.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, None)
        except OSError as exc:
            report["problems"].append(f"no private /proc: {exc}")
    cpu = max(1, int(config.get("cpu_s", 2)))
    limits = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_AS: (int(config.get("memory_mb", 256)) << 20,) * 2,
        resource.RLIMIT_NPROC: (int(config.get("max_procs", 16)),) * 2,
        resource.RLIMIT_FSIZE: (int(config.get("max_file_mb", 8)) << 20,) * 2,
        resource.RLIMIT_NOFILE: (int(config.get("max_open_files", 64)),) * 2,
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_MEMLOCK: (0, 0),
    }
    for which, (soft, hard) in limits.items():
        current_hard = resource.getrlimit(which)[1]
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))
    if report["userns"]:  # root inside the user namespace only: drop every capability
        libc.drop_capabilities()
    elif os.geteuid() == 0:  # a uid of its own: RLIMIT_NPROC applies, no real user's files are writable
        uid = int(config["uid"])
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
    os.umask(0o077)


def libc() -> _Libc:
    """The C library wrapper `isolate` loaded (a fresh one if it never ran)."""
    return _LIBC or _Libc()
