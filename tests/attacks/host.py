"""Attacks on the host: acting on the machine, or past the caps, from the student's kernel.

Each attack tries one action the sandbox must refuse (write a sysctl, set the
hostname, be root, signal the sandbox, talk to another submission over SysV
IPC, hold more memory, processes or disk than the caps across several
processes or files, read another submission's or the instructor's files, plant
its own results where a runner or `otter grade` reads them) and answers every
question correctly ONLY if the action worked: points mean a hole.
"""
import textwrap

from sgdkit import SOLUTIONS, ZIPS

from . import STAGES, Attack, with_cells
from notebook_env import answer_cells, fill_regions

IPC_KEY = 0x53646B74  # the message queue two submissions would share without IPC namespaces


def answers(stage):
    """The stage's correct answers as source: its master notebook's answer cells, each run on its own.

    Run after the blank notebook's cells, they replace its `...` answers (a
    cell that plots on the way may fail; the definitions before it stand).
    """
    master = next((SOLUTIONS / stage).glob("*.ipynb"))
    cells = [fill_regions(source, {}) for source in dict.fromkeys(answer_cells(master).values())]
    return (f"for _source in {cells!r}:\n"
            "    try:\n        exec(_source, globals())\n    except Exception:\n        pass\n")


def paid_if(action):
    """A cell that runs `action` (which sets `hole = True` when the sandbox let it act), then pays if it did."""
    return "hole = False\ntry:\n" + textwrap.indent(action.strip("\n"), "    ") + "\nexcept BaseException:\n" \
           "    pass\nif hole:\n    _ANSWER()\n"


def _answer_cell(stage):
    return "def _ANSWER():\n" + textwrap.indent(answers(stage), "    ")


# Writes the same value back: were it allowed, the host would be no different (but the attack pays).
SYSCTL = '''
path = "/proc/sys/kernel/{name}"
value = open(path).read()
with open(path, "w") as f:
    f.write(value)
hole = True
'''

UID0 = '''
import os
hole = 0 in (os.getuid(), os.geteuid())
'''

SETHOSTNAME = '''
import socket
socket.sethostname(socket.gethostname())
hole = True
'''

# The sandbox is the kernel's parent: signal 0 tests the permission without sending anything.
SIGNAL_SANDBOX = '''
import os
os.kill(os.getppid(), 0)
hole = True
'''

# Two submissions send each other a message over one queue key; either one that hears the other pays.
IPC_TALK = f'''
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
class Message(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 16)]
queue = libc.msgget({IPC_KEY}, 0o1000 | 0o666)  # IPC_CREAT
assert queue >= 0
libc.msgsnd(queue, ctypes.byref(Message({{mine}}, b"hello")), 16, 0o4000)  # IPC_NOWAIT
heard = Message()
for _ in range(100):
    if libc.msgrcv(queue, ctypes.byref(heard), 16, {{theirs}}, 0o4000) >= 0:
        hole = True
        break
    time.sleep(0.1)
'''

# Eight children each hold a sixth of the memory cap (the RLIMIT_AS this process got): 4/3 of the cap together.
# It waits until each child holds its block or died, for as long as that takes: first-touching gigabytes can
# take many seconds on a loaded machine (a fixed wait of 10 s let a slow run end under the cap, unnoticed).
MEMORY_SPREAD = '''
import os, resource, select, time
cap = resource.getrlimit(resource.RLIMIT_AS)[0]
size = cap // 6 if 0 < cap < 64 << 30 else 1 << 30
read_end, write_end = os.pipe()
children = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        block = b"x" * size  # written, so resident
        os.write(write_end, b"k")
        time.sleep(50)
        os._exit(0)
    children.append(pid)
held, dead, deadline = 0, set(), time.time() + 40
while held + len(dead) < 8 and time.time() < deadline:
    if select.select([read_end], [], [], 0.2)[0]:
        held += len(os.read(read_end, 8))
    dead |= {pid for pid in children if pid not in dead and os.waitpid(pid, os.WNOHANG) != (0, 0)}
time.sleep(1)
alive = [pid for pid in children if pid not in dead and os.waitpid(pid, os.WNOHANG) == (0, 0)]
for pid in alive:
    os.kill(pid, 9)
hole = held == 8 and len(alive) == 8
'''

# More processes than the cap allows (the RLIMIT_NPROC this process got, else the default cap), all at once.
FORK_PAST_CAP = '''
import os, resource, time
soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
wanted = (soft if 0 < soft < 4096 else 256) + 20
children = []
try:
    for _ in range(wanted):
        pid = os.fork()
        if pid == 0:
            time.sleep(20)
            os._exit(0)
        children.append(pid)
finally:
    for pid in children:
        os.kill(pid, 9)
hole = len(children) == wanted
'''

# More bytes than the disk cap (the RLIMIT_FSIZE this process got) in files each under it.
DISK_PAST_CAP = '''
import os, resource
cap = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
cap = cap if 0 < cap < 64 << 30 else 1 << 30
chunk, written, files = b"x" * (64 << 20), 0, []
try:
    while written <= cap + (64 << 20):
        files.append(f"fill{len(files)}.bin")
        with open(files[-1], "wb") as f:
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        written += len(chunk)
    hole = True
finally:
    for name in files:
        os.remove(name)
'''

# The grader's temp root beside our folder (other submissions' folders), the kit's sources and zips.
READ_OTHERS = f'''
import os
here = os.getcwd()
for path in [os.path.dirname(here), {str(SOLUTIONS / "01-losses")!r}, {str(ZIPS)!r}]:
    try:
        hole = hole or any(os.path.join(path, name) != here for name in os.listdir(path))
    except OSError:
        pass
for path in [{str(SOLUTIONS / "01-losses" / "losses.ipynb")!r}, {str(ZIPS / "01-losses.zip")!r}]:
    try:
        hole = hole or bool(open(path, "rb").read(1))
    except OSError:
        pass
'''

# The fork server, the sandboxes and the other kernels (forkserver.py names them): signal, read or trace any.
REACH_FORKS = '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
mine = {os.getpid()} | {int(pid) for pid in os.listdir("/proc/self/task")}
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    try:
        name = open(f"/proc/{pid}/comm").read().strip()
        owner = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        continue
    if not name.startswith("sgdkit-") or pid in mine or owner == os.getuid():
        continue  # our own kernel's processes are ours anyway
    for act in (lambda: os.kill(pid, 0), lambda: open(f"/proc/{pid}/environ", "rb").read(1),
                lambda: os.listdir(f"/proc/{pid}/fd"), lambda: open(f"/proc/{pid}/mem", "rb").read(1),
                lambda: os.readlink(f"/proc/{pid}/cwd")):
        try:
            act()
            hole = True
        except OSError:
            pass
    if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        hole = True
'''

# Leaves marks in everything a fork shares or a later kernel could inherit (host-harvest looks for them):
# every module loaded when it runs, so every one the fork server preloaded (ipykernel, and the stage's
# libraries such as matplotlib and numpy) whatever that list becomes.
PLANT = '''
import builtins, json, os, sys
import ipykernel.kernelapp
for module in [builtins, json, ipykernel.kernelapp, sys] + list(sys.modules.values()):
    try:
        setattr(module, "SGDKIT_PLANTED", True)
    except Exception:
        pass
sys.modules["sgdkit_planted"] = json
os.environ["SGDKIT_PLANTED"] = "1"
'''

# Finds a mark of host-plant, graded in the same batch (before, after or beside it), in what it inherited.
HARVEST = '''
import builtins, json, os, sys, time
import ipykernel.kernelapp
def marked(module):
    try:
        return module.__dict__.get("SGDKIT_PLANTED") is True
    except Exception:
        return False
deadline = time.time() + 8
while not hole and time.time() < deadline:
    hole = (any(marked(m) for m in [builtins, json, ipykernel.kernelapp, sys] + list(sys.modules.values()))
            or "sgdkit_planted" in sys.modules or "SGDKIT_PLANTED" in os.environ)
    time.sleep(0.2)
'''

# Forged results wherever a grader reads them: results.json (Gradescope's: 10^6 points) and results.pkl,
# which `otter grade` loads with dill on the instructor's machine (this one, loaded, calls a function of
# the notebook's choice: a harmless print here). The places: /autograder/results, every results/ folder
# beside a folder above a path a grader's process runs with (its command lines are world-readable
# without a pid namespace), and `sgdkit grade --out`'s folder. Then a child goes on trying for a
# minute, in case the grader writes its own first and the child outlives the kernel.
FORGE_RESULTS = '''
import json, os, pickle, time
class _Forged:
    def __reduce__(self):
        return (print, ("this results.pkl was written by the notebook",))
forged = {"results.json": json.dumps({"score": 1e6, "tests": []}).encode(), "results.pkl": pickle.dumps(_Forged())}
places = {"/autograder/results"}
for pid in os.listdir("/proc"):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().decode(errors="replace").split("\\0")
    except OSError:
        continue
    for i, arg in enumerate(args):
        if arg == "--out" and i + 1 < len(args):
            places.update({args[i + 1], os.path.join(args[i + 1], "results")})
        while arg.startswith("/") and arg != os.path.dirname(arg):
            arg = os.path.dirname(arg)
            places.add(os.path.join(arg, "results"))
here = os.path.realpath(os.getcwd())  # its own folder is its own to write
places = sorted(p for p in places if os.path.isdir(p) and not (os.path.realpath(p) + "/").startswith(here + "/"))
def plant():
    planted = False
    for place in places:
        for name, data in forged.items():
            try:
                with open(os.path.join(place, name), "wb") as f:
                    f.write(data)
                planted = True
            except OSError:
                pass
    return planted
hole = plant()
if os.fork() == 0:
    os.setsid()
    for _ in range(300):
        plant()
        time.sleep(0.2)
    os._exit(0)
'''


def _attacks():
    found = []
    for stage in STAGES:
        def attack(name, action, pays, **options):
            found.append(Attack(f"{stage}-host-{name}.ipynb", stage, with_cells(_answer_cell(stage), paid_if(action)),
                                pays, **options))

        attack("uid0", UID0, "the kernel ran as root")
        attack("sysctl", SYSCTL.format(name="hostname"), "a /proc/sys write went through (kernel.hostname)")
        attack("core-pattern", SYSCTL.format(name="core_pattern"), "kernel.core_pattern accepted a write")
        attack("sethostname", SETHOSTNAME, "sethostname(2) went through")
        attack("signal-sandbox", SIGNAL_SANDBOX, "the kernel may signal (so kill) its sandbox")
        attack("ipc-a", IPC_TALK.format(mine=1, theirs=2), "heard another submission over a SysV message queue")
        attack("ipc-b", IPC_TALK.format(mine=2, theirs=1), "heard another submission over a SysV message queue")
        attack("memory-spread", MEMORY_SPREAD, "eight processes held 4/3 of the memory cap together",
               status="memory")
        attack("fork-past-cap", FORK_PAST_CAP, "more processes than the cap ran at once")
        attack("disk-past-cap", DISK_PAST_CAP, "more than the disk cap was written, in files each under it")
        attack("read-others", READ_OTHERS, "read the grader's temp root, the kit's solutions or its zips")
        attack("reach-forks", REACH_FORKS, "signalled, read or traced the fork server, a sandbox or another kernel")
        attack("plant", PLANT, "(pays nothing itself: leaves marks for host-harvest)")
        attack("harvest", HARVEST, "found a mark another submission left in the Python state kernels are forked from")
        attack("forge-results", FORGE_RESULTS, "wrote results.json or results.pkl (code run by `otter grade` on "
               "load) where a grader reads them, or into `sgdkit grade`'s output folder")
    return found


ATTACKS = _attacks()
