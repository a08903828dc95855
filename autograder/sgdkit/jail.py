"""Confine the sandbox before it starts the kernel (caps, loopback, a private root), and leave no process after.

Runs in the sandbox process, which the fork server forked in new namespaces where the
machine allows (isolation.py has the modes). isolate() joins the submission's
cgroups, sets rlimits the kernel inherits and, with namespaces, chroots into a
read-only view of just the system and Python, where a size-capped tmpfs copy
of the workdir is the only writable (and only visible) place. The sandbox
becomes the subreaper of whatever the kernel starts, so stop_descendants()
can kill it all before the folder is checked.
"""
import os
import shutil
import site
import sys
import time
from typing import TYPE_CHECKING

from . import isolation
from .isolation import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT

if TYPE_CHECKING:
    from .sandbox import Job

# Copied into the private /etc: what Python, IPython and matplotlib read; nothing secret.
ETC_FILES = ["passwd", "group", "hosts", "nsswitch.conf", "host.conf", "ld.so.cache", "ld.so.conf",
             "localtime", "os-release", "mime.types"]
ETC_DIRS = ["alternatives", "fonts", "ld.so.conf.d"]
DEVICES = ["null", "zero", "full", "random", "urandom"]


def isolate(job: "Job") -> list[str]:
    """Join the submission's cgroups, apply rlimits; with namespaces, bring up loopback and build a private root.

    Returns notes on what failed.
    """
    import resource

    notes = isolation.enter(job.get("cgroups", []))  # first: from here on, everything counts against the caps
    # Inherited by the kernel. Python ignores SIGXFSZ, so a too-large file is an OSError, not a kill.
    limits = [("RLIMIT_AS", job["memory"]), ("RLIMIT_CPU", job["cpu"]), ("RLIMIT_FSIZE", job["disk"]),
              ("RLIMIT_CORE", 0)]
    if job.get("uid") is not None:  # counted per uid, and this uid is the submission's alone: a total cap
        limits.append(("RLIMIT_NPROC", job["processes"]))
    for name, value in limits:
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (AttributeError, ValueError, OSError) as exc:  # macOS refuses some
            notes.append(f"could not set {name} ({exc})")
    if job["namespaces"]:
        notes += loopback_up()
        try:
            private_root(job["workdir"], job["newroot"], job["disk"])
        except OSError as exc:
            notes.append(f"could not hide this machine's files from the notebook ({exc})")
    isolation.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans of the kernel stay ours to kill
    isolation.prctl(4, 0)  # PR_SET_DUMPABLE 0: the kernel cannot open our /proc fds
    return notes


def loopback_up() -> list[str]:
    """SIOCGIFFLAGS / SIOCSIFFLAGS with IFF_UP on lo: the kernel talks to us over 127.0.0.1."""
    import fcntl
    import socket
    import struct

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            flags = struct.unpack("16sH", fcntl.ioctl(sock, 0x8913, struct.pack("16sH", b"lo", 0)))[1]
            fcntl.ioctl(sock, 0x8914, struct.pack("16sH", b"lo", flags | 1))
        return []
    except OSError as exc:
        return [f"could not bring up loopback: {exc}"]


def private_root(workdir: str, newroot: str, disk: int) -> None:
    """chroot into a read-only tree of just the system, Python and the workdir (the only writable place).

    Everything else (the kit's solutions and zips, other submissions, the
    instructor's files, raw disks) is simply not there for student code to read.
    The workdir is a tmpfs of `disk` bytes holding a copy of what the parent put
    there: one disk cap for all the kernel's files, gone with this namespace.
    """
    mount = isolation.mount

    def bind(path: str, writable: bool = False) -> None:
        target = newroot + path
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        mount(path, target, None, MS_BIND | MS_REC)
        if not writable:  # keep the flags the original mount had, or a user namespace refuses
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _mount_flags(path))

    mount("tmpfs", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,mode=755")
    for name in os.listdir("/"):  # merged /usr: /bin -> usr/bin and friends are symlinks
        if os.path.islink("/" + name):
            os.symlink(os.readlink("/" + name), os.path.join(newroot, name))
    python = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
              *site.getsitepackages()}
    tops = [p for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64")
            if os.path.isdir(p) and not os.path.islink(p)]
    chosen = sorted(set(tops) | {os.path.realpath(p) for p in python if os.path.isdir(p)})
    for path in chosen:
        if not any(path.startswith(other.rstrip("/") + "/") for other in chosen if other != path):
            bind(path)
    os.makedirs(newroot + "/etc", exist_ok=True)
    for name in ETC_FILES:
        source = "/etc/" + name
        if os.path.islink(source):
            os.symlink(os.readlink(source), newroot + source)
        elif os.path.isfile(source):
            shutil.copyfile(source, newroot + source)
    for name in ETC_DIRS:
        if os.path.isdir("/etc/" + name):
            bind("/etc/" + name)
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            bind("/dev/" + name, writable=True)
    os.makedirs(newroot + "/proc", exist_ok=True)
    mount("proc", newroot + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(newroot + "/tmp", exist_ok=True)
    os.makedirs(newroot + workdir)
    mount("tmpfs", newroot + workdir, "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk},mode=700")
    shutil.copytree(workdir, newroot + workdir, symlinks=True, dirs_exist_ok=True)
    mount(None, newroot, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(newroot)
    os.chdir(workdir)


def _mount_flags(path: str) -> int:
    """nosuid/nodev/noexec/atime flags of the mount holding `path` (from /proc/self/mountinfo)."""
    known = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
             "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21}
    best, flags = "", 0
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best = point
                flags = sum(known.get(option, 0) for option in fields[5].split(","))
    return flags


def stop_descendants() -> None:
    """Kill every process the kernel left (we are their subreaper), again until none is left, and reap them."""
    import psutil

    for _ in range(100):
        children = psutil.Process().children(recursive=True)
        if not children:
            return
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.01)
