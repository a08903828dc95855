"""How `sgdkit grade` isolates a submission's kernel: the mode, a uid of its own without privileges, the sweep after.

The trust boundary on the host is the kernel's uid. The parent (batch.py) and
sandbox.py (one per submission) never run student code: they stay the
grader's user. The student's kernel and everything it starts run as a uid of
their own (when the grader is root), without capabilities, inside the caps of
one cgroup per submission and, where the machine allows, in new namespaces.

Modes, strongest first (the README has the table of what each guarantees):

    namespaces, as root       unshare -mn --ipc --uts --pid; the kernel as a fresh unprivileged uid
    user namespace, not root  the same inside `unshare -r`; the kernel as the grader's own uid
    no namespaces, as root    Docker, Gradescope: a fresh uid, per-uid limits, a 0700 workdir
    no namespaces, not root   rlimits only

Caps for a submission's processes together: cgroup v2 (memory + pids), else
cgroup v1, else RLIMIT_NPROC per uid (real: the uid is the submission's own);
RLIMIT_AS per process always. The parent makes and removes the cgroups
(cgroups.py), the sandbox joins them first thing (enter), confines itself
(jail.py) and starts the kernel through preexec().
"""
import ctypes
import os
import secrets
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache

from .cgroups import Cgroups, join

OFF = "SGDKIT_NO_NAMESPACES"  # =1: grade without namespaces (tests; Gradescope, whose seccomp refuses unshare)
UIDS = (1 << 30, 1 << 31)  # kernels' uids: far above any account's, so no passwd entry is needed
KERNEL_OOM_SCORE = 500  # should memory run short, the kernel is killed first (and cannot lower this)
SANDBOX_OOM_SCORE = -1000  # never the sandbox: it reports what happened


@dataclass
class Mode:
    """How a batch is isolated: the unshare prefix (None: no namespaces), root or not, its cgroups."""

    prefix: list[str] | None
    root: bool  # the grader is root: each submission's kernel gets a uid of its own
    why: str = ""  # why there are no namespaces
    cgroups: Cgroups | None = None  # set once the batch's cgroups exist

    @property
    def name(self) -> str:
        if self.prefix:
            return "namespaces, as root" if self.root else "user namespace, not root"
        return "no namespaces, as root" if self.root else "no namespaces, not root"

    def guarantees(self) -> list[tuple[str, bool]]:
        """[(guarantee, holds)] in the order of the README's table."""
        ns, caps = self.prefix is not None, self.cgroups.controllers if self.cgroups else set()
        return [
            ("kernel uid unprivileged", True),  # a uid of its own as root; else the grader's, not root
            ("network off", ns),
            ("host files hidden", ns),
            ("IPC and hostname private", ns),
            ("total memory cap", "memory" in caps),
            ("total process cap", "pids" in caps or self.root),
            ("total disk cap", ns),
            ("other submissions unreadable", ns or self.root),
        ]

    def describe(self) -> str:
        """One line: the mode, and which guarantees hold."""
        holds = [text for text, ok in self.guarantees() if ok]
        lacks = [text for text, ok in self.guarantees() if not ok]
        how = self.name + (f" ({self.why})" if self.why else "") + (f", {self.cgroups.kind}" if self.cgroups else "")
        lacking = f"; does not hold: {', '.join(lacks)}" if lacks else ""
        return f"isolation: {how}; holds: {', '.join(holds)}{lacking}"


def detect(namespaces: bool | None = None) -> Mode:
    """The strongest mode this machine allows. namespaces=False (or SGDKIT_NO_NAMESPACES=1) turns them off;
    True requires them (ValueError if the machine refuses)."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if namespaces is False or (namespaces is None and os.environ.get(OFF, "") not in ("", "0")):
        return Mode(None, root, why="turned off" if namespaces is False else f"turned off by {OFF}")
    prefix = ["unshare", "-mn" if root else "-rmn", "--ipc", "--uts", "--pid", "--fork", "--kill-child",
              "--mount-proc", "--"]
    why = _refused(tuple(prefix))
    if why and namespaces:
        raise ValueError(f"namespaces are required but this machine refuses them: {why}")
    return Mode(None if why else prefix, root, why=why or "")


@cache
def _refused(prefix: tuple[str, ...]) -> str | None:
    """Why `prefix true` fails here (None if it works): checked once per process."""
    if not shutil.which(prefix[0]):
        return "no unshare command"
    try:
        done = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    return None if done.returncode == 0 else f"unshare failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"


# clone(2) flags: a forked sandbox enters new namespaces itself (forkserver.py), as `unshare` would
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x20000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000)
# mount(2) flags
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)


def unshare(root: bool) -> None:
    """Enter new mount, network, IPC, UTS and pid namespaces (and, not root, a user namespace where we are root),
    as `unshare -mn --ipc --uts --pid` does; the pid namespace holds the next child this process forks.

    Raises OSError when the machine refuses.
    """
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID | (0 if root else CLONE_NEWUSER)
    lib = libc()
    if lib.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), f"unshare: {os.strerror(ctypes.get_errno())}")
    if not root:  # `unshare -r`: we are root inside, the grader's uid outside
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted from here on shows outside


def mount_proc() -> None:
    """A /proc of this pid namespace, as `unshare --mount-proc` mounts it (run as the namespace's first process)."""
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2), raising OSError with the paths."""
    lib = libc()
    lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

    def enc(value: str | None) -> bytes | None:
        return None if value is None else os.fsencode(value)

    if lib.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {source} on {target}: {os.strerror(ctypes.get_errno())}")


def new_uid(taken: Collection[int] = ()) -> int:
    """A uid no account and no other submission of this batch uses."""
    while True:
        uid = UIDS[0] + secrets.randbelow(UIDS[1] - UIDS[0])
        if uid not in taken:
            return uid


# ---------------------------------------------------------------- the sandbox's side


def enter(folders: list[str]) -> list[str]:
    """Move this process into the submission's cgroups (the kernel follows) and out of the OOM killer's reach.

    Returns notes on what failed: those caps then do not hold for this submission.
    """
    notes = join(folders)
    _oom_score(SANDBOX_OOM_SCORE)
    return notes


def _oom_score(value: int) -> None:
    """Set this process's oom_score_adj where Linux lets us (raising it always may; lowering needs root)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError:
        pass


@cache
def libc() -> ctypes.CDLL:
    """The C library, errno kept for ctypes.get_errno()."""
    return ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg: int) -> int:
    """prctl(2) where the C library has it (Linux); -1 elsewhere."""
    call = getattr(libc(), "prctl", None)
    return -1 if call is None else call(option, arg, 0, 0, 0)


def name_process(name: str) -> None:
    """PR_SET_NAME: what ps and psutil call this process (forks share one command line: sgdkit-kernel,
    sgdkit-sandbox, sgdkit-forks tell them apart)."""
    call = getattr(libc(), "prctl", None)
    if call is not None:
        call(15, name.encode()[:15], 0, 0, 0)


def preexec(uid: int | None) -> Callable[[], None]:
    """The kernel's last steps before exec (run in the forked child): no capabilities, no new privileges,
    the submission's uid if given, and first in line for the OOM killer."""
    libc()  # loaded here, before the fork

    def steps() -> None:
        _oom_score(KERNEL_OOM_SCORE)
        for cap in range(64):  # PR_CAPBSET_DROP while we still may (as root), until there are no more
            if prctl(24, cap) != 0:
                break
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)  # as root, sets the real, effective and saved uid: no way back
        prctl(38, 1)  # PR_SET_NO_NEW_PRIVS: no setuid binary gives anything back

    return steps


def hand_over(folder: str, uid: int) -> None:
    """Give `folder` and everything in it to the submission's uid, private to it (0700)."""
    os.chmod(folder, 0o700)
    os.lchown(folder, uid, uid)
    for parent, dirs, files in os.walk(folder):  # never follows links, nor does lchown
        for name in dirs + files:
            os.lchown(os.path.join(parent, name), uid, uid)


def reach_python(user: int | None) -> dict[str, int]:
    """{real folder: O_PATH descriptor} of this Python's folders that `user` could not reach by path, else {}.

    As root with Python under a folder closed to others (pyenv under a 0700
    /root), a kernel of its own uid reaches Python's files only through
    descriptors opened before it drops root: see reroute_python.
    """
    real = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
    if user is None or all(map(reachable, real)) or not os.path.isdir("/proc/self/fd"):
        return {}
    return {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in real}


def reroute_python(fds: dict[str, int]) -> None:
    """Make imports from now on go through /proc/self/fd/N for each of `fds` (a forked kernel, after reach_python).

    The modules already imported keep running from memory; what they and the
    notebook import later is found through sys.path and each package's
    __path__, rewritten here. The kernel must be dumpable to open its own
    /proc/self/fd (kernel.become_kernel).
    """
    import importlib

    def moved(path: str) -> str:
        for real in sorted(fds, key=len, reverse=True):
            if path == real or path.startswith(real + "/"):
                return f"/proc/self/fd/{fds[real]}{path[len(real):]}"
        return path

    sys.path[:] = [moved(os.path.realpath(p)) if p else p for p in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [moved(os.path.realpath(p)) for p in search]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()


def reachable(path: str) -> bool:
    """Can a uid with no groups reach `path` (every folder on the way searchable by others)?"""
    while True:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return False
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return False
        if path == os.path.dirname(path):
            return True
        path = os.path.dirname(path)


# ---------------------------------------------------------------- after a submission (the parent)


def sweep(uid: int) -> None:
    """Kill every process of `uid` and remove its SysV IPC objects and temp files: nothing of it outlives its run.

    Without namespaces these live on the host; with them, this finds nothing.
    """
    _kill_uid(uid)
    _remove_ipc(uid)
    for folder in ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


def _kill_uid(uid: int) -> None:
    import psutil

    for _ in range(100):  # again until none is left: it may be forking
        found = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and uid in p.info["uids"]]
        if not found:
            return
        for process in found:
            try:
                process.kill()
            except psutil.Error:
                pass
        time.sleep(0.02)


def _remove_ipc(uid: int) -> None:
    """IPC_RMID every SysV shared memory segment, message queue and semaphore set `uid` owns or made."""
    lib = libc()
    remove = {"shm": lambda i: lib.shmctl(i, 0, None), "msg": lambda i: lib.msgctl(i, 0, None),
              "sem": lambda i: lib.semctl(i, 0, 0)}
    for kind, rmid in remove.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                header, *rows = [line.split() for line in f]
        except (OSError, ValueError):
            continue
        for row in rows:
            fields = dict(zip(header, row))
            if str(uid) in (fields.get("uid"), fields.get("cuid")):
                rmid(int(fields[header[1]]))  # shmid, msqid or semid
