"""Tests of the host isolation of `sgdkit grade` (isolation.py, cgroups.py), in each mode this machine can force.

Fast tests drive isolation.py and cgroups.py directly: modes, guarantees, cgroups, the
kernel's preexec, the sweep. Slow ones grade real notebooks in three modes
(namespaces as root; no namespaces as root, with cgroups; and without cgroups
either, as in Docker) and watch from outside: no kernel process has uid 0,
nothing is left after the batch, and each cap the mode claims holds for a
submission's processes together (its attack then earns 0), while each cap it
does not claim is really missing (its attack pays): the guarantees printed are
the true ones.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from attacks import with_cells
from attacks.host import (DISK_PAST_CAP, FORK_PAST_CAP, HARVEST, MEMORY_SPREAD, PLANT, REACH_FORKS, _answer_cell,
                          paid_if)
from sgdkit import ASSIGNMENTS, isolation
from sgdkit.grade import grade

ROOT = os.geteuid() == 0
STAGE = "01-losses"
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (a uid of its own per kernel)")


# ---------------------------------------------------------------- without kernels


def test_namespaces_can_be_turned_off_or_required(monkeypatch):
    """Do namespaces=False and SGDKIT_NO_NAMESPACES=1 turn them off, and does namespaces=True insist?"""
    assert isolation.detect(False).prefix is None
    monkeypatch.setenv(isolation.OFF, "1")
    mode = isolation.detect()
    assert mode.prefix is None and isolation.OFF in mode.why
    monkeypatch.delenv(isolation.OFF)
    monkeypatch.setattr(isolation, "_refused", lambda prefix: "unshare failed: Operation not permitted")
    assert isolation.detect().prefix is None and "not permitted" in isolation.detect().why
    with pytest.raises(ValueError, match="refuses"):
        isolation.detect(True)


def test_guarantees_per_mode():
    """Does each mode claim exactly the README's row of guarantees?"""
    cgroups = isolation.Cgroups("cgroup v1", {"memory": "/m", "pids": "/p"})
    table = {  # namespaces, root, cgroups -> which guarantees hold (README order)
        (True, True, True): "11111111", (True, False, False): "11110011", (False, True, True): "10001101",
        (False, True, False): "10000101", (False, False, False): "10000000",
    }
    for (ns, root, cg), row in table.items():
        mode = isolation.Mode(["unshare"] if ns else None, root, cgroups=cgroups if cg else None)
        assert "".join(str(int(ok)) for _, ok in mode.guarantees()) == row, mode.name
    text = isolation.Mode(None, True, why="turned off").describe()
    assert text.startswith("isolation: no namespaces, as root (turned off)") and "does not hold: network off" in text


def test_cli_has_the_caps_and_the_switch():
    """Does `sgdkit grade --help` offer --memory, --disk, --processes and --no-namespaces, with defaults?"""
    done = subprocess.run([sys.executable, "-m", "sgdkit.cli", "grade", "--help"], capture_output=True, text=True)
    for option in ("--memory", "--disk", "--processes", "--no-namespaces"):
        assert option in done.stdout
    assert "default: 1G" in done.stdout and "default: 256" in done.stdout


@pytest.fixture
def cgroups():
    made = isolation.Cgroups.create()
    if made is None:
        pytest.skip("no writable cgroups with memory and pids here")
    yield made
    made.close()


def test_cgroup_v2_where_controllers_can_be_enabled(tmp_path, monkeypatch):
    """On a cgroup2 tree (faked with files), is the batch made at the top when our own cgroup refuses
    controllers, and are a submission's caps and OOM kills in v2's files?"""
    top, own = tmp_path / "unified", tmp_path / "unified" / "session.scope"
    own.mkdir(parents=True)
    for folder in (top, own):
        (folder / "cgroup.controllers").write_text("cpu memory pids\n")
    (top / "cgroup.subtree_control").write_text("memory pids\n")
    (own / "cgroup.subtree_control").mkdir()  # the write fails, as EBUSY does where processes live
    monkeypatch.setattr("sgdkit.cgroups._cgroup_mounts", lambda: [(str(top), "/", "cgroup2", {"rw"})])
    monkeypatch.setattr("sgdkit.cgroups._own_cgroups", lambda: {"": "/session.scope"})
    monkeypatch.setattr("sgdkit.cgroups._remove", lambda folder: shutil.rmtree(folder, ignore_errors=True))
    made = isolation.Cgroups.create()
    assert made.kind == "cgroup v2" and Path(made.batch["memory"]).parent == top
    assert Path(made.batch["pids"], "cgroup.subtree_control").read_text() == "+memory +pids"
    sub = made.submission(1 << 30, 99)
    folder = Path(sub["memory"])
    assert sub["pids"] == str(folder) and folder.parent == Path(made.batch["memory"])
    assert [(folder / name).read_text() for name in ("memory.max", "memory.swap.max", "pids.max")] == \
        [str(1 << 30), "0", "99"]
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\n")
    assert made.oom_kills(sub) == 2
    made.close()
    assert not Path(made.batch["memory"]).exists()


def _in_cgroup(folders, code):
    """Run `code` in a Python that first joins `folders` as the sandbox does: (returncode, stdout)."""
    prelude = f"from sgdkit import isolation\nassert not isolation.enter({folders!r})\n"
    done = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout


def test_cgroup_caps_processes_together_and_leaves_nothing(cgroups):
    """Do a submission's processes together stop at its memory and process caps, with the OOM kill counted,
    and are its cgroups and the batch's gone afterwards?"""
    made = cgroups.submission(256 << 20, 40)
    hog = ("import os, time\nkids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
           "        block = b'x' * (100 << 20)\n        time.sleep(2)\n        os._exit(0)\n    kids.append(pid)\n"
           "print(sum(os.waitpid(pid, 0)[1] != 0 for pid in kids))")
    code, out = _in_cgroup(sorted(set(made.values())), hog)
    assert code == 0 and int(out) >= 1, out  # 400 MB in 4 processes under a 256 MB cap: someone was killed
    assert cgroups.oom_kills(made) >= 1
    forks = ("import os, time\nn = 0\ntry:\n    for _ in range(100):\n        if os.fork() == 0:\n"
             "            time.sleep(3)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)")
    code, out = _in_cgroup(sorted(set(made.values())), forks)
    assert code == 0 and int(out) < 40, out
    cgroups.remove(made)
    assert not any(os.path.exists(folder) for folder in made.values())
    cgroups.close()
    assert not any(os.path.exists(folder) for folder in cgroups.batch.values())


@needs_root
def test_preexec_drops_to_the_uid_without_capabilities():
    """Does the kernel's preexec leave it with the submission's uid and gid, no groups, no capabilities?"""
    uid = isolation.new_uid()
    done = subprocess.run(["sh", "-c", "id -u; id -g; id -G; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"],
                          capture_output=True, text=True, preexec_fn=isolation.preexec(uid))
    lines = done.stdout.split("\n")
    assert lines[:3] == [str(uid)] * 3, done.stdout + done.stderr
    assert "CapEff:\t0000000000000000" in done.stdout and "CapBnd:\t0000000000000000" in done.stdout
    assert "NoNewPrivs:\t1" in done.stdout


@needs_root
def test_sweep_leaves_nothing_of_a_uid():
    """After sweep(uid), is no process, SysV IPC object or temp file of that uid left?"""
    uid = isolation.new_uid()
    leave = (f"ipcmk -Q >/dev/null && ipcmk -M 4096 >/dev/null && touch /tmp/sgdkit-sweep-{uid} "
             "&& (setsid sleep 300 &) && sleep 300")
    proc = subprocess.Popen(["sh", "-c", leave], preexec_fn=isolation.preexec(uid), start_new_session=True)
    for _ in range(100):
        if os.path.exists(f"/tmp/sgdkit-sweep-{uid}") and _ipc_of(uid) == 2:
            break
        time.sleep(0.05)
    assert _ipc_of(uid) == 2
    isolation.sweep(uid)
    proc.wait(timeout=10)
    assert _processes_of(uid) == [] and _ipc_of(uid) == 0 and not os.path.exists(f"/tmp/sgdkit-sweep-{uid}")


@needs_root
def test_a_python_out_of_reach_is_reached_through_descriptors():
    """Can a forked kernel of another uid import from this Python's folders (stdlib, this venv), wherever they lie?"""
    uid = isolation.new_uid()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # as kernel.become_kernel does it; modules dropped from sys.modules must load again, from disk
        try:
            os.close(read)
            fds = isolation.reach_python(uid)
            isolation.reroute_python(fds)
            # Pure-Python modules of the standard library and of this venv (a C extension loads once only).
            for name in [n for n in sys.modules if n.split(".")[0] in ("json", "xml", "tqdm")]:
                del sys.modules[name]
            isolation.preexec(uid)()
            isolation.prctl(4, 1)
            import json
            import xml.dom.minidom  # noqa: F401

            import tqdm
            os.write(write, f"{os.getuid()} {tqdm.__name__} {json.dumps([1])}".encode())
        except BaseException as exc:
            os.write(write, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        said = f.read()
    os.waitpid(pid, 0)
    assert said == f"{uid} tqdm [1]"


def _processes_of(uid):
    return [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and uid in p.info["uids"]]


def _ipc_of(uid):
    """How many SysV IPC objects `uid` owns."""
    count = 0
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{kind}") as f:
            header, *rows = [line.split() for line in f]
        count += sum(str(uid) == dict(zip(header, row))["uid"] for row in rows)
    return count


# ---------------------------------------------------------------- real grading, per mode

# Leaves everything it can behind: a SysV segment and queue, a /tmp file, a daemon in its own session, a child.
LEAVER = r'''
import ctypes, os, subprocess, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmget(0, 1 << 20, 0o1000 | 0o666)
libc.msgget(0, 0o1000 | 0o666)
try:
    open(f"/tmp/sgdkit-leftover-{os.getpid()}", "w").write("x")
except OSError:
    pass
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(300)
    os._exit(0)
subprocess.Popen(["sleep", "8"])
time.sleep(4)
'''
CAPS = {"memory": MEMORY_SPREAD, "processes": FORK_PAST_CAP, "disk": DISK_PAST_CAP}
# Attacks on what the submissions' sandboxes share, the fork server: they must earn 0 in every mode.
FORK_SERVER = {"reach-forks": REACH_FORKS, "plant": PLANT, "harvest": HARVEST}
GUARANTEE = {"memory": "total memory cap", "processes": "total process cap", "disk": "total disk cap"}


def _cgroup_dirs():
    """Every batch cgroup this process made (others on this machine may be grading too)."""
    return {str(p) for top in Path("/sys/fs/cgroup").glob("*") for p in top.rglob(f"sgdkit-{os.getpid()}-*")}


def _kernel_uids(stop, seen):
    """Until `stop` is set, record the uids of every kernel below this process and of its children."""
    while not stop.is_set():
        try:
            for process in psutil.Process().children(recursive=True):
                if process.name() == "sgdkit-kernel":
                    for one in [process, *process.children(recursive=True)]:
                        seen.append((one.pid, tuple(one.uids())))
        except psutil.Error:
            pass
        time.sleep(0.1)


@pytest.fixture(scope="module", params=["namespaces", "no-namespaces", "no-namespaces-no-cgroups"])
def graded_mode(request, built_kit, tmp_path_factory):
    """One batch in one mode: ({file: result}, kernel uids seen, what was left over)."""
    if not ROOT:
        pytest.skip("the modes as root need root")
    monkeypatch = pytest.MonkeyPatch()
    if request.param == "no-namespaces-no-cgroups":
        monkeypatch.setattr(isolation.Cgroups, "create", classmethod(lambda cls: None))
    blank = json.loads((ASSIGNMENTS / STAGE / "losses.ipynb").read_text())
    inbox = tmp_path_factory.mktemp(f"inbox-{request.param}")
    (inbox / "leaver.ipynb").write_bytes(with_cells(LEAVER)(blank))
    for name, action in {**CAPS, **FORK_SERVER}.items():
        (inbox / f"{name}.ipynb").write_bytes(with_cells(_answer_cell(STAGE), paid_if(action))(blank))
    imports = "import doctest, numpy\n_ANSWER()"
    (inbox / "imports-numpy.ipynb").write_bytes(with_cells(_answer_cell(STAGE), imports)(blank))
    namespaces = request.param == "namespaces"
    temp = Path(tempfile.mkdtemp())  # under /tmp: kernels of their own uids must pass through it
    temp.chmod(0o711)
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_kernel_uids, args=(stop, seen))
    watcher.start()
    saved, tempfile.tempdir = tempfile.tempdir, str(temp)
    try:
        results = {r["file"]: r for r in grade([inbox], STAGE, tmp_path_factory.mktemp("out"), force=True,
                                               workers=2, timeout=60, progress=False, memory=2 << 30,
                                               processes=64, disk=256 << 20, namespaces=namespaces)}
    finally:
        tempfile.tempdir = saved
        stop.set()
        watcher.join()
        monkeypatch.undo()
    uids = {uid for _, ids in seen for uid in ids}  # the kernels' (the watcher saw each one)
    left = {"temp": sorted(temp.iterdir()), "cgroups": _cgroup_dirs(), "ipc": sum(map(_ipc_of, uids)),
            "processes": [p.pid for uid in uids for p in _processes_of(uid)],
            "files": [p for p in Path("/tmp").glob("sgdkit-leftover-*") if p.lstat().st_uid in uids],
            "below us": [p.pid for p in psutil.Process().children(recursive=True)]}
    shutil.rmtree(temp, ignore_errors=True)
    return results, seen, left


@pytest.mark.slow
def test_no_kernel_process_is_root(graded_mode):
    """Did every kernel, and every process it started, run with no uid 0 (real, effective or saved)?"""
    _, seen, _ = graded_mode
    assert seen, "no kernel was seen running"
    assert all(0 not in uids for _, uids in seen), [s for s in seen if 0 in s[1]]
    assert len({uids for _, uids in seen}) >= 2  # each submission its own uid


@pytest.mark.slow
def test_nothing_outlives_the_batch(graded_mode):
    """After the batch, is no process, SysV IPC object, temp folder, /tmp file or cgroup of it left?"""
    results, _, left = graded_mode
    assert results["leaver.ipynb"]["status"] == "ok", results["leaver.ipynb"]["status"]
    assert left == {"temp": [], "cgroups": set(), "ipc": 0, "processes": [], "files": [], "below us": []}


@pytest.mark.slow
@pytest.mark.parametrize("cap", CAPS)
def test_caps_hold_exactly_where_claimed(graded_mode, cap):
    """Does a submission stay within each cap its mode claims (0 points), and pass each it does not (points)?"""
    result = graded_mode[0][f"{cap}.ipynb"]
    note = result["notes"][0]  # the batch's isolation line: which guarantees hold
    assert note.startswith("isolation: ")
    holds = GUARANTEE[cap] in note.split("does not hold")[0]
    assert (result["total"] == 0) == holds, (note, result["status"])


@pytest.mark.slow
@pytest.mark.parametrize("name", FORK_SERVER)
def test_no_submission_reaches_the_fork_server_or_another(graded_mode, name):
    """Can no kernel signal, read or trace the fork server, a sandbox or another kernel, nor inherit another's
    marks, whatever the mode? (Each would run the solution if it could.)"""
    result = graded_mode[0][f"{name}.ipynb"]
    assert result["status"] == "ok" and result["total"] == 0, (result["status"], result["total"])


@pytest.mark.slow
def test_a_watched_module_imported_is_not_tampering(graded_mode):
    """Does the solution that imports numpy and doctest get full marks, status ok, in every mode (their files
    found through descriptors where the kernel's uid cannot reach Python are still Python's)?"""
    result = graded_mode[0]["imports-numpy.ipynb"]
    assert (result["status"], result["total"]) == ("ok", 24), result["detail"]
