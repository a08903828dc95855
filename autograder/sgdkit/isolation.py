"""Keep each submission's processes away from this machine and from each other during `sgdkit grade`.

The trust boundary on the host is the kernel's uid. grade.py (the parent) and
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
RLIMIT_AS per process always. The parent makes and removes the cgroups, the
sandbox joins them first thing and starts the kernel through preexec().
"""
import os
import secrets
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache

OFF = "SGDKIT_NO_NAMESPACES"  # =1: grade without namespaces (tests; Gradescope, whose seccomp refuses unshare)
UIDS = (1 << 30, 1 << 31)  # kernels' uids: far above any account's, so no passwd entry is needed
KERNEL_OOM_SCORE = 500  # should memory run short, the kernel is killed first (and cannot lower this)
SANDBOX_OOM_SCORE = -1000  # never the sandbox: it reports what happened
CONTROLLERS = ("memory", "pids")


@dataclass
class Mode:
    """How a batch is isolated: the unshare prefix (None: no namespaces), root or not, its cgroups."""

    prefix: list | None
    root: bool  # the grader is root: each submission's kernel gets a uid of its own
    why: str = ""  # why there are no namespaces
    cgroups: "Cgroups | None" = None  # set once the batch's cgroups exist

    @property
    def name(self):
        if self.prefix:
            return "namespaces, as root" if self.root else "user namespace, not root"
        return "no namespaces, as root" if self.root else "no namespaces, not root"

    def guarantees(self):
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

    def describe(self):
        """One line: the mode, and which guarantees hold."""
        holds = [text for text, ok in self.guarantees() if ok]
        lacks = [text for text, ok in self.guarantees() if not ok]
        how = self.name + (f" ({self.why})" if self.why else "") + (f", {self.cgroups.kind}" if self.cgroups else "")
        lacking = f"; does not hold: {', '.join(lacks)}" if lacks else ""
        return f"isolation: {how}; holds: {', '.join(holds)}{lacking}"


def detect(namespaces=None):
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
def _refused(prefix):
    """Why `prefix true` fails here (None if it works): checked once per process."""
    if not shutil.which(prefix[0]):
        return "no unshare command"
    try:
        done = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    return None if done.returncode == 0 else f"unshare failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"


def new_uid(taken=()):
    """A uid no account and no other submission of this batch uses."""
    while True:
        uid = UIDS[0] + secrets.randbelow(UIDS[1] - UIDS[0])
        if uid not in taken:
            return uid


# ---------------------------------------------------------------- cgroups (the parent)


class Cgroups:
    """The batch's cgroup, v2 or v1, with one capped child per submission; made and removed by the parent."""

    def __init__(self, kind, batch):
        self.kind = kind
        self.batch = batch  # {controller: the batch's folder}; v2 has one folder for both
        self.live = []  # submissions' {controller: folder} not removed yet

    @property
    def controllers(self):
        return set(self.batch)

    @classmethod
    def create(cls):
        """The batch's cgroups where this process may make them (root, or a delegated v2 tree); else None."""
        name = f"sgdkit-{os.getpid()}-{secrets.token_hex(4)}"
        for kind, make in (("cgroup v2", _make_v2), ("cgroup v1", _make_v1)):
            batch = make(name)
            if batch:
                return cls(kind, batch)
        return None

    def submission(self, memory, processes):
        """A fresh cgroup for one submission: {controller: folder}, with its memory and process caps set."""
        name = secrets.token_hex(6)
        made = {controller: os.path.join(folder, name) for controller, folder in self.batch.items()}
        self.live.append(made)
        for folder in set(made.values()):
            os.mkdir(folder)
        if "memory" in made:
            v2 = self.kind == "cgroup v2"
            _write(made["memory"], "memory.max" if v2 else "memory.limit_in_bytes", str(memory))
            try:  # no escape into swap, where the machine has swap accounting
                _write(made["memory"], "memory.swap.max" if v2 else "memory.memsw.limit_in_bytes",
                       "0" if v2 else str(memory))
            except OSError:
                pass
        if "pids" in made:
            _write(made["pids"], "pids.max", str(processes))
        return made

    def oom_kills(self, made):
        """How many processes of this submission the kernel's OOM killer killed for its memory cap."""
        folder = made.get("memory")
        if not folder:
            return 0
        for line in _read(folder, "memory.events" if self.kind == "cgroup v2" else "memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def remove(self, made):
        """Kill every process left in this submission's cgroups and remove them."""
        for folder in set(made.values()):
            _remove(folder)
        if made in self.live:
            self.live.remove(made)

    def close(self):
        """Remove every submission's cgroups, then the batch's: nothing outlives the batch."""
        for made in list(self.live):
            self.remove(made)
        for folder in set(self.batch.values()):
            _remove(folder)


def _make_v2(name):
    """{controller: batch folder} in a cgroup2 tree with memory and pids, or None."""
    own = _own_cgroups().get("")
    for mount, root, fstype, _ in _cgroup_mounts():
        if fstype != "cgroup2":
            continue
        for parent in _places(mount, root, own):
            if not set(CONTROLLERS) <= set(_read(parent, "cgroup.controllers").split()):
                continue
            batch = os.path.join(parent, name)
            try:
                if not set(CONTROLLERS) <= set(_read(parent, "cgroup.subtree_control").split()):
                    # Refused (EBUSY) where the parent holds processes, as our own cgroup does: then the top.
                    _write(parent, "cgroup.subtree_control", "+memory +pids")
                os.mkdir(batch)
                _write(batch, "cgroup.subtree_control", "+memory +pids")
                return {controller: batch for controller in CONTROLLERS}
            except OSError:
                _remove(batch)
    return None


def _make_v1(name):
    """{controller: batch folder} in the cgroup v1 memory and pids hierarchies that let us write, or None."""
    own, batch = _own_cgroups(), {}
    for mount, root, fstype, options in _cgroup_mounts():
        mine = [c for c in CONTROLLERS if c in options and c not in batch]
        if fstype != "cgroup" or not mine:
            continue
        for parent in _places(mount, root, own.get(mine[0])):
            try:
                os.mkdir(os.path.join(parent, name))
            except OSError:
                continue
            batch.update({controller: os.path.join(parent, name) for controller in mine})
            break
    return batch or None


def _cgroup_mounts():
    """[(mount point, its root in the hierarchy, fstype, options)] of the cgroup file systems mounted here."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, after = left.split(), right.split()
                if len(fields) > 4 and len(after) > 2 and after[0] in ("cgroup", "cgroup2"):
                    found.append((fields[4], fields[3], after[0], set(after[2].split(","))))
    except OSError:
        pass
    return found


def _own_cgroups():
    """{controller (or "" for cgroup2): this process's cgroup path}, from /proc/self/cgroup."""
    own = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for controller in controllers.split(",") if controllers else [""]:
                    own[controller] = path
    except (OSError, ValueError):
        pass
    return own


def _places(mount, root, own):
    """Where a batch cgroup may go: under our own cgroup (its limits then hold too), else the hierarchy's top."""
    places = [mount]
    top = root.rstrip("/")
    if own is not None and (own + "/").startswith(top + "/"):
        places.insert(0, os.path.join(mount, own[len(top):].lstrip("/")))
    return [p for p in dict.fromkeys(os.path.normpath(p) for p in places) if os.path.isdir(p)]


def _remove(folder):
    """Kill what runs in a cgroup folder (repeatedly: it may be forking) and remove it, if it exists."""
    for _ in range(200):
        if not os.path.isdir(folder):
            return
        pids = [int(pid) for pid in _read(folder, "cgroup.procs").split()]
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        try:
            os.rmdir(folder)
            return
        except OSError:
            time.sleep(0.02)  # busy until the killed processes are gone
    print(f"sgdkit grade: warning: could not remove the cgroup {folder}", file=sys.stderr)


def _read(folder, name):
    try:
        with open(os.path.join(folder, name)) as f:
            return f.read()
    except OSError:
        return ""


def _write(folder, name, text):
    with open(os.path.join(folder, name), "w") as f:
        f.write(text)


# ---------------------------------------------------------------- the sandbox's side


def enter(folders):
    """Move this process into the submission's cgroups (the kernel follows) and out of the OOM killer's reach.

    Returns notes on what failed: those caps then do not hold for this submission.
    """
    notes = []
    for folder in folders:
        try:
            _write(folder, "cgroup.procs", "0")  # "0" is the writer itself
        except OSError as exc:
            notes.append(f"could not join the cgroup {folder} ({exc.strerror}): its caps do not hold")
    _oom_score(SANDBOX_OOM_SCORE)
    return notes


def _oom_score(value):
    """Set this process's oom_score_adj where Linux lets us (raising it always may; lowering needs root)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError:
        pass


@cache
def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def prctl(option, arg):
    """prctl(2) where the C library has it (Linux); -1 elsewhere."""
    call = getattr(_libc(), "prctl", None)
    return -1 if call is None else call(option, arg, 0, 0, 0)


def preexec(uid):
    """The kernel's last steps before exec (run in the forked child): no capabilities, no new privileges,
    the submission's uid if given, and first in line for the OOM killer."""
    _libc()  # loaded here, before the fork

    def steps():
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


def hand_over(folder, uid):
    """Give `folder` and everything in it to the submission's uid, private to it (0700)."""
    os.chmod(folder, 0o700)
    os.lchown(folder, uid, uid)
    for parent, dirs, files in os.walk(folder):  # never follows links, nor does lchown
        for name in dirs + files:
            os.lchown(os.path.join(parent, name), uid, uid)


def kernel_python(home):
    """(python, descriptors to pass) for a kernel running as another uid.

    sys.executable, unless this Python lies where an unprivileged uid cannot
    reach it (pyenv under a 0700 /root): then a venv in `home` whose paths go
    through /proc/self/fd to descriptors opened here, so the kernel reaches
    Python's own folders and nothing else above them.
    """
    real = {path: os.path.realpath(path) for path in (sys.base_prefix, sys.prefix, sys.executable)}
    binary = os.path.relpath(real[sys.executable], real[sys.base_prefix])
    if all(map(reachable, real.values())) or binary.startswith("..") or not os.path.isdir("/proc/self/fd"):
        return sys.executable, ()
    fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in {real[sys.base_prefix], real[sys.prefix]}}
    base, prefix = (f"/proc/self/fd/{fds[real[p]]}" for p in (sys.base_prefix, sys.prefix))
    venv = os.path.join(home, "python")
    version = "python{}.{}".format(*sys.version_info)
    os.makedirs(os.path.join(venv, "bin"), exist_ok=True)
    os.makedirs(os.path.join(venv, "lib", version), exist_ok=True)
    with open(os.path.join(venv, "pyvenv.cfg"), "w") as f:
        f.write(f"home = {base}/bin\ninclude-system-site-packages = false\n")
    os.symlink(f"{base}/{binary}", os.path.join(venv, "bin", "python"))
    os.symlink(f"{prefix}/lib/{version}/site-packages", os.path.join(venv, "lib", version, "site-packages"))
    return os.path.join(venv, "bin", "python"), tuple(fds.values())


def reachable(path):
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


def sweep(uid):
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


def _kill_uid(uid):
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


def _remove_ipc(uid):
    """IPC_RMID every SysV shared memory segment, message queue and semaphore set `uid` owns or made."""
    libc = _libc()
    remove = {"shm": lambda i: libc.shmctl(i, 0, None), "msg": lambda i: libc.msgctl(i, 0, None),
              "sem": lambda i: libc.semctl(i, 0, 0)}
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
