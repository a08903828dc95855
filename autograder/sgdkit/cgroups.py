"""The batch's cgroup (v2, else v1) with one capped child per submission: made, read and removed by the parent.

A submission's processes together stay within its memory and process caps;
the sandbox joins its child cgroups first thing (join), so the kernel and
everything it starts follow. isolation.py says which caps hold in each mode.
"""
import logging
import os
import secrets
import time

log = logging.getLogger(__name__)

CONTROLLERS = ("memory", "pids")


class Cgroups:
    """The batch's cgroups, v2 or v1, with one capped child per submission."""

    def __init__(self, kind: str, batch: dict[str, str]) -> None:
        self.kind = kind  # "cgroup v2" or "cgroup v1"
        self.batch = batch  # {controller: the batch's folder}; v2 has one folder for both
        self.live: list[dict[str, str]] = []  # submissions' {controller: folder} not removed yet

    @property
    def controllers(self) -> set[str]:
        return set(self.batch)

    @classmethod
    def create(cls) -> "Cgroups | None":
        """The batch's cgroups where this process may make them (root, or a delegated v2 tree); else None."""
        name = f"sgdkit-{os.getpid()}-{secrets.token_hex(4)}"
        for kind, make in (("cgroup v2", _make_v2), ("cgroup v1", _make_v1)):
            batch = make(name)
            if batch:
                return cls(kind, batch)
        return None

    def submission(self, memory: int, processes: int) -> dict[str, str]:
        """A fresh cgroup for one submission: {controller: folder}, with its memory (bytes) and process caps set."""
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

    def oom_kills(self, made: dict[str, str]) -> int:
        """How many processes of this submission the kernel's OOM killer killed for its memory cap."""
        folder = made.get("memory")
        if not folder:
            return 0
        for line in _read(folder, "memory.events" if self.kind == "cgroup v2" else "memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def remove(self, made: dict[str, str]) -> None:
        """Kill every process left in this submission's cgroups and remove them."""
        for folder in set(made.values()):
            _remove(folder)
        if made in self.live:
            self.live.remove(made)

    def close(self) -> None:
        """Remove every submission's cgroups, then the batch's: nothing outlives the batch."""
        for made in list(self.live):
            self.remove(made)
        for folder in set(self.batch.values()):
            _remove(folder)


def join(folders: list[str]) -> list[str]:
    """Move this process into `folders` (the sandbox, first thing: the kernel follows); notes on what failed."""
    notes = []
    for folder in folders:
        try:
            _write(folder, "cgroup.procs", "0")  # "0" is the writer itself
        except OSError as exc:
            notes.append(f"could not join the cgroup {folder} ({exc.strerror}): its caps do not hold")
    return notes


def _make_v2(name: str) -> dict[str, str] | None:
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


def _make_v1(name: str) -> dict[str, str] | None:
    """{controller: batch folder} in the cgroup v1 memory and pids hierarchies that let us write, or None."""
    own = _own_cgroups()
    batch: dict[str, str] = {}
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


def _cgroup_mounts() -> list[tuple[str, str, str, set[str]]]:
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


def _own_cgroups() -> dict[str, str]:
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


def _places(mount: str, root: str, own: str | None) -> list[str]:
    """Where a batch cgroup may go: under our own cgroup (its limits then hold too), else the hierarchy's top."""
    places = [mount]
    top = root.rstrip("/")
    if own is not None and (own + "/").startswith(top + "/"):
        places.insert(0, os.path.join(mount, own[len(top):].lstrip("/")))
    return [p for p in dict.fromkeys(os.path.normpath(p) for p in places) if os.path.isdir(p)]


def _remove(folder: str) -> None:
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
    log.warning("could not remove the cgroup %s", folder)


def _read(folder: str, name: str) -> str:
    try:
        with open(os.path.join(folder, name)) as f:
            return f.read()
    except OSError:
        return ""


def _write(folder: str, name: str, text: str) -> None:
    with open(os.path.join(folder, name), "w") as f:
        f.write(text)
