"""Run ONE submission in an isolated child: the only place student code runs during `sgdkit grade`.

The parent (grade.py) starts this file as a script, under
`unshare -mn --ipc --uts --pid --fork --kill-child --mount-proc` where the
machine allows (see isolation.py for the modes), writes a JSON job on stdin and
reads JSON lines from stdout:

    {"event": "isolation", "notes": [...]}          how well the child is isolated
    {"event": "cell", "index": 7}                   code cell 7 (counted from 1) started
    {"event": "cell_error", "index": 7, "ename": ..., "evalue": ...}
    {"event": "notebook", "state": "done" | "timeout" | "died", ...}
    {"event": "public", "question": q, "results": [...]}   before anything of the grader's is loaded
    {"event": "probe", "question": q, "data": {...}} | {"event": "probe_failed", "question": q, "reason": ...}
    {"event": "fingerprints", "values": {...}}      what numpy/doctest/otter/... look like now
    {"event": "output", "bytes": n}
    {"event": "done"}
    {"event": "files", "changed": [...]}            match/ and tests/ rewritten, checked once all is dead

Nothing here judges anything, and nothing the kernel gets knows an answer: each
probe brings only the probe code and its own prerequisites' stand-ins (see the
trust boundary in docs/architecture.md); the data goes back as strict JSON
(no NaN or Infinity) and the parent decides the score. Before the kernel starts, this process joins the
submission's cgroups, applies rlimits, brings up loopback and chroots into a
read-only view of just the system and Python, with the submission's folder (a
size-capped tmpfs) the only writable (and only visible) place; the kernel runs
as the submission's own uid when the grader is root, without capabilities, and
with its output away from this process's stdout, so student code cannot write
protocol lines. isolation.py has the modes and what each guarantees.
"""
import json
import os
import secrets
import signal
import stat
import sys
import time

from sgdkit import isolation  # imported before the chroot: the private root has no sgdkit

# Watched for tampering: (module, attribute path). The parent fingerprints them in
# its own (clean) interpreter; the kernel fingerprints them after the student ran.
WATCHED = [
    ("builtins", "exec"), ("builtins", "compile"), ("builtins", "__import__"),
    ("builtins", "open"), ("builtins", "isinstance"), ("builtins", "getattr"),
    ("json", "dump"), ("json", "dumps"),
    ("math", "isclose"),
    ("numpy", "allclose"), ("numpy", "isclose"), ("numpy", "array_equal"),
    ("numpy.testing", "assert_allclose"), ("numpy.testing", "assert_array_equal"),
    ("numpy.testing", "assert_almost_equal"),
    ("doctest", "DocTestRunner.run"), ("doctest", "DocTestRunner.summarize"),
    ("doctest", "DocTestRunner.report_failure"), ("doctest", "run_docstring_examples"),
    ("otter", "Notebook.check"), ("otter", "Notebook._log_event"), ("otter", "Notebook.check_all"),
    ("otter.test_files", "ExceptionTestFile.run"), ("otter.test_files", "ExceptionTestFile.from_string"),
    ("otter.test_files", "test_case.call_func"), ("otter.test_files", "TestFile.grade"),
    ("otter.test_files", "TestFile.score"), ("otter.test_files", "TestFile.passed_all"),
    ("otter.test_files", "TestFile.possible"), ("otter.test_files", "TestCaseResult.__init__"),
    ("otter.test_files", "GradingResults.__init__"), ("otter.test_files", "GradingResults.total"),
    ("otter.execute", "Checker.check"),
]

MAX_DATA_BYTES = 32 << 20  # a probe's JSON answer larger than this is refused
INTERRUPT_GRACE = 5.0  # seconds a kernel gets to honour Ctrl-C before it is killed
PUBLIC_SECONDS = 20.0  # for all public tests together: tiny examples, feedback only


def load_package(name, files):
    """Import a package from {relative path: source} under `name`, never from disk or sys.modules.

    Sent as source into the student's kernel, so it imports only what it needs itself.
    """
    import importlib
    import importlib.util
    import sys as _sys

    class Finder:
        """Serve `name` and its submodules from `files`, ahead of every other finder."""

        def find_spec(self, fullname, path=None, target=None):
            if fullname != name and not fullname.startswith(name + "."):
                return None
            rel = fullname[len(name):].lstrip(".").replace(".", "/")
            for candidate, package in ((rel + "/__init__.py", True), (rel + ".py", False)):
                candidate = candidate.lstrip("/")
                if candidate in files:
                    spec = importlib.util.spec_from_loader(fullname, self, is_package=package)
                    spec.origin = f"<{name}>/{candidate}"
                    self.sources = getattr(self, "sources", {})
                    self.sources[fullname] = (candidate, files[candidate])
                    return spec
            return None

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            candidate, source = self.sources[module.__name__]
            module.__file__ = f"<{name}>/{candidate}"
            exec(compile(source, module.__file__, "exec"), module.__dict__)

    for key in [k for k in _sys.modules if k == name or k.startswith(name + ".")]:
        del _sys.modules[key]  # a module planted under our name is never used
    finder = Finder()
    _sys.meta_path.insert(0, finder)
    try:
        package = importlib.import_module(name)
        for path in files:  # all of it now, so no later import needs the finder
            parts = path[:-len(".py")].split("/")
            if path.endswith(".py"):
                importlib.import_module(".".join([name] + parts[:-1] if parts[-1] == "__init__" else [name] + parts))
        return package
    finally:
        _sys.meta_path.remove(finder)


def fingerprints(watched):
    """{"module:attr": description} of each watched object, as it is in this interpreter."""
    import hashlib
    import importlib
    import inspect
    import sys as _sys

    def where(path):
        """A code object's file, the same however this Python is reached (see isolation.kernel_python)."""
        for prefix in sorted({_sys.prefix.rstrip("/"), _sys.base_prefix.rstrip("/")}, key=len, reverse=True):
            if path.startswith(prefix + "/"):
                return "<python>" + path[len(prefix):]
        return path

    def describe(obj):
        if isinstance(obj, property):
            return ["property", describe(obj.fget)]
        if isinstance(obj, (classmethod, staticmethod)):
            return [type(obj).__name__, describe(obj.__func__)]
        func = getattr(obj, "__func__", obj)
        code = getattr(func, "__code__", None)
        if isinstance(code, type(describe.__code__)):
            home = _sys.modules.get(getattr(func, "__module__", None) or "")
            return ["code", type(obj).__name__, getattr(func, "__qualname__", None), where(code.co_filename),
                    code.co_firstlineno, hashlib.sha256(code.co_code).hexdigest(),
                    getattr(home, "__dict__", None) is getattr(func, "__globals__", None)]
        return ["object", type(obj).__module__ + "." + type(obj).__qualname__,
                getattr(obj, "__module__", None), getattr(obj, "__qualname__", getattr(obj, "__name__", None))]

    found = {}
    for module_name, attr in watched:
        key = f"{module_name}:{attr}"
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = inspect.getattr_static(obj, part) if inspect.isclass(obj) else getattr(obj, part)
            found[key] = describe(obj)
        except Exception as exc:
            found[key] = ["missing", type(exc).__name__]
    return found


# Code run inside the kernel. Each snippet runs in a fresh namespace, never the
# student's globals; the student's globals are handed to probe() as `env`.
_SNIPPET = (
    "__import__('builtins').exec(__import__('builtins').compile({source!r}, '<sgdkit>', 'exec'), "
    "{{'__name__': '__sgdkit__', '__user_ns__': __import__('builtins').globals(), "
    "'__job__': __import__('json').loads({job!r})}})"
)

_PROBE = """
import importlib, json
job = __job__
ns = {}
exec(job['loader'], ns)
package = ns['load_package'](job['package'], job['files'])
stand_ins = []
for question, source in job['stand_ins'].items():
    patches = {'__name__': job['package'] + '_standin_' + question}
    exec(compile(source, '<stand-in ' + question + '>', 'exec'), patches)
    stand_ins.append(patches['PATCHES'])
module = importlib.import_module(job['package'] + '.' + job['module'])
data = module.probe(job['question'], __user_ns__, job['inputs'], stand_ins)
with open(job['out'], 'w') as f:
    json.dump(data, f, allow_nan=False)
"""

_PUBLIC = """
import json
from otter.test_files import ExceptionTestFile
job = __job__
test_file = ExceptionTestFile.from_string(job['source'], path=job['question'] + '.py')
test_file.test_cases = [tc for tc in test_file.test_cases if not tc.hidden]
test_file.run(__user_ns__)
results = [{'name': r.test_case.body.test_func.__name__, 'passed': bool(r.passed), 'message': (r.message or '')[:4000]}
           for r in test_file.test_case_results]
with open(job['out'], 'w') as f:
    json.dump(results, f)
"""

_FINGERPRINTS = """
import json
ns = {}
exec(__job__['source'], ns)
with open(__job__['out'], 'w') as f:
    json.dump(ns['fingerprints'](__job__['watched']), f)
"""


class Kernel:
    """An ipykernel process in `workdir`, driven over jupyter_client with hard deadlines."""

    user = None  # the host uid the kernel runs as (None: ours); isolate() sets it, one job per sandbox

    def __init__(self, workdir, env):
        import subprocess
        import tempfile

        from jupyter_client import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        runtime = os.path.join(env["HOME"], "runtime")
        os.makedirs(runtime, exist_ok=True)
        connection_file, info = write_connection_file(
            os.path.join(runtime, "kernel.json"), ip="127.0.0.1", key=secrets.token_hex(16).encode())
        python, fds = sys.executable, ()
        if self.user is not None:
            os.chown(connection_file, self.user, self.user)  # we wrote it 0600: the kernel must read it
            python, fds = isolation.kernel_python(env["HOME"])
        # Read back through our own descriptor: the kernel may replace the path, not our fd.
        self.stderr = tempfile.TemporaryFile(dir=env["TMPDIR"])
        self.process = subprocess.Popen(
            [python, "-m", "ipykernel_launcher", "-f", connection_file, "--HistoryManager.hist_file=:memory:"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
            start_new_session=True, pass_fds=fds, preexec_fn=isolation.preexec(self.user))
        self.client = BlockingKernelClient()
        self.client.load_connection_info(info)
        self.client.start_channels()
        self.stream_bytes = 0
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.wait_for_ready(timeout=max(1.0, deadline - time.monotonic()))
                return
            except RuntimeError as exc:
                # A slow start on a busy machine misses heartbeats, which jupyter_client takes for a death.
                if not self.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the kernel did not start ({exc}; it {self.death()}): "
                                       f"{self.stderr_tail(300).strip()}") from None

    def alive(self):
        return self.process.poll() is None

    def death(self):
        """A short description of how the kernel process ended."""
        code = self.process.poll()
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def run(self, code, seconds, silent=False):
        """Execute `code`; return ("ok"|"error"|"timeout"|"died", ename, evalue, recovered)."""
        msg_id = self.client.execute(code, silent=silent, store_history=not silent,
                                     allow_stdin=False, stop_on_error=False)
        deadline = time.monotonic() + seconds
        interrupted = False
        while True:
            self._drain_iopub()
            reply = self._reply(msg_id, 0.05)
            if reply is not None:
                content = reply["content"]
                if interrupted:
                    return "timeout", None, None, True
                if content.get("status") == "error":
                    return "error", content.get("ename", ""), content.get("evalue", ""), True
                return "ok", None, None, True
            if not self.alive():
                return "died", None, None, False
            now = time.monotonic()
            if now >= deadline and not interrupted:
                interrupted = True  # a Python-level loop stops on Ctrl-C; C-level work may not
                os.kill(self.process.pid, signal.SIGINT)
                deadline = now + INTERRUPT_GRACE
            elif now >= deadline:
                self.kill()
                return "timeout", None, None, False

    def _reply(self, msg_id, wait):
        from queue import Empty

        try:
            msg = self.client.get_shell_msg(timeout=wait)
        except Empty:
            return None
        return msg if msg.get("parent_header", {}).get("msg_id") == msg_id else None

    def _drain_iopub(self):
        """Count printed bytes and drop them: output never piles up in memory."""
        from queue import Empty

        for _ in range(1000):  # then look at the clock again, however fast the kernel prints
            try:
                msg = self.client.get_iopub_msg(timeout=0)
            except Empty:
                return
            if msg["msg_type"] == "stream":
                self.stream_bytes += len(msg["content"].get("text", ""))

    def stderr_tail(self, size=600):
        """The end of the kernel's stderr, for crash messages."""
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - size))
        return self.stderr.read().decode("utf-8", "replace")

    def kill(self):
        """Kill the kernel and everything it started."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        self.client.stop_channels()


def emit(event, **fields):
    """One protocol line to the parent."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


# mount(2) flags
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
# Copied into the private /etc: what Python, IPython and matplotlib read; nothing secret.
ETC_FILES = ["passwd", "group", "hosts", "nsswitch.conf", "host.conf", "ld.so.cache", "ld.so.conf",
             "localtime", "os-release", "mime.types"]
ETC_DIRS = ["alternatives", "fonts", "ld.so.conf.d"]
DEVICES = ["null", "zero", "full", "random", "urandom"]


def isolate(job):
    """Join the submission's cgroups, apply rlimits; with namespaces, bring up loopback and build a private root.

    Returns notes on what failed. The kernel will run as the job's uid (when the grader is root).
    """
    import ctypes
    import resource

    notes = isolation.enter(job.get("cgroups") or [])  # first: from here on, everything counts against the caps
    # Inherited by the kernel. Python ignores SIGXFSZ, so a too-large file is an OSError, not a kill.
    limits = [("RLIMIT_AS", job.get("memory")), ("RLIMIT_CPU", job.get("cpu")), ("RLIMIT_FSIZE", job.get("disk")),
              ("RLIMIT_CORE", 0)]
    if job.get("uid") is not None:  # counted per uid, and this uid is the submission's alone: a total cap
        limits.append(("RLIMIT_NPROC", job.get("processes")))
    for name, value in limits:
        try:
            if value is not None:
                resource.setrlimit(getattr(resource, name), (value, value))
        except (AttributeError, ValueError, OSError) as exc:  # macOS refuses some
            notes.append(f"could not set {name} ({exc})")
    Kernel.user = job.get("uid")
    if job.get("namespaces"):
        notes += loopback_up()
        try:
            private_root(ctypes.CDLL(None, use_errno=True), job["workdir"], job["newroot"], job.get("disk"))
        except OSError as exc:
            notes.append(f"could not hide this machine's files from the notebook ({exc})")
    isolation.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans of the kernel stay ours to kill
    isolation.prctl(4, 0)  # PR_SET_DUMPABLE 0: the kernel cannot open our /proc fds
    return notes


def loopback_up():
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


def private_root(libc, workdir, newroot, disk=None):
    """chroot into a read-only tree of just the system, Python and the workdir (the only writable place).

    Everything else (the kit's solutions and zips, other submissions, the
    instructor's files, raw disks) is simply not there for student code to read.
    The workdir is a tmpfs of `disk` bytes holding a copy of what the parent put
    there: one disk cap for all the kernel's files, gone with this namespace.
    """
    import ctypes
    import shutil
    import site

    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

    def mount(source, target, fstype, flags, data=None):
        enc = lambda v: None if v is None else os.fsencode(v)
        if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
            raise OSError(ctypes.get_errno(), f"mount {source} on {target}: {os.strerror(ctypes.get_errno())}")

    def bind(path, writable=False):
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
    mount("tmpfs", newroot + workdir, "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk or '50%'},mode=700")
    shutil.copytree(workdir, newroot + workdir, symlinks=True, dirs_exist_ok=True)
    mount(None, newroot, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(newroot)
    os.chdir(workdir)


def _mount_flags(path):
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


def kernel_env(job):
    """A clean environment: no inherited secrets, one BLAS thread, a private HOME."""
    home = os.path.join(job["workdir"], ".sgdkit")
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home, "TMPDIR": os.path.join(home, "tmp"), "LANG": "C.UTF-8",
        "IPYTHONDIR": os.path.join(home, "ipython"), "MPLCONFIGDIR": os.path.join(home, "matplotlib"),
        "JUPYTER_CONFIG_DIR": os.path.join(home, "jupyter"), "JUPYTER_DATA_DIR": os.path.join(home, "jupyter"),
        "JUPYTER_RUNTIME_DIR": os.path.join(home, "runtime"), "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1", "SGDKIT_GRADING": "1",
    }
    # The answers folder too (run_job's): made here, so that it is the kernel's like the rest of HOME.
    for path in (home, env["TMPDIR"], env["JUPYTER_RUNTIME_DIR"], os.path.join(home, "answers")):
        os.makedirs(path, exist_ok=True)
    if Kernel.user is not None:
        isolation.hand_over(job["workdir"], Kernel.user)
    return env


def read_json(path, limit=MAX_DATA_BYTES):
    """Parse a JSON file the kernel wrote: a regular file, not a link or a pipe, and not too large."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("answer is not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"answer is larger than {limit} bytes")
    return json.loads(data, parse_constant=_not_finite, parse_float=_finite)


def _not_finite(token):
    """NaN, Infinity and -Infinity are not JSON: a probe never writes them, so the student did."""
    raise ValueError(f"answer holds {token}")


def _finite(text):
    """A JSON number as a float, refusing ones too large for a float (1e999 would parse as inf)."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"answer holds {text[:20]}, which is not a finite float")
    return value


def snippet(source, job):
    """Code for the kernel: run `source` in a fresh namespace holding `job` and the student's globals."""
    return _SNIPPET.format(source=source, job=json.dumps(job))


def run_job(job):
    """Run the notebook, the public tests, the probes and the tamper check, reporting as it goes.

    The public tests come first, while nothing of the grader's is in the
    kernel, so their messages (which reach the student's feedback) can quote
    nothing hidden. Each probe brings only what its question may see.
    """
    emit("isolation", notes=isolate(job))
    kernel = Kernel(job["workdir"], kernel_env(job))
    answers = os.path.join(job["workdir"], ".sgdkit", "answers")
    os.makedirs(answers, exist_ok=True)
    try:
        run_cells(kernel, job)
        if kernel.alive():
            run_public(kernel, job, answers)
        run_probes(kernel, job, answers)  # reports every question, even when the kernel is gone
        if kernel.alive():
            run_fingerprints(kernel, job, answers)
        emit("output", bytes=kernel.stream_bytes)
    finally:
        kernel.kill()
    emit("done")


def run_cells(kernel, job):
    """Execute the code cells top to bottom within the notebook's time budget."""
    start = time.monotonic()
    deadline = start + job["timeout"]
    for index, source in job["cells"]:
        emit("cell", index=index)
        status, ename, evalue, recovered = kernel.run(source, max(0.0, deadline - time.monotonic()))
        if status == "error":
            emit("cell_error", index=index, ename=ename, evalue=(evalue or "")[:500])
        elif status in ("timeout", "died"):
            emit("notebook", state=status, index=index, recovered=recovered, how=kernel.death(),
                 limit=job["timeout"], seconds=round(time.monotonic() - start, 3), stderr=kernel.stderr_tail())
            return
    emit("notebook", state="done", seconds=round(time.monotonic() - start, 3))


def run_probes(kernel, job, answers):
    """Probe every question in prerequisite order, one execution each, with its own time budget.

    A probe carries the probe package and the stand-ins of its question's
    prerequisites only, which were themselves probed (and reported) before.
    """
    for step in job["probes"]:
        question = step["question"]
        if not kernel.alive():
            emit("probe_failed", question=question, reason=f"the kernel {kernel.death()} before this question")
            continue
        out = os.path.join(answers, f"{secrets.token_hex(8)}.json")  # nothing the notebook could pre-plant
        status, ename, evalue, _ = kernel.run(snippet(_PROBE, {
            "package": job["package"], "loader": job["loader_source"], "files": job["probe_files"],
            "module": job["probe_module"], "out": out, **step,
        }), job["probe_timeout"], silent=True)
        if status == "ok":
            try:
                emit("probe", question=question, data=read_json(out))
                continue
            except (OSError, ValueError) as exc:
                reason = f"the probe's answer could not be read ({exc})"
        elif status == "error":
            reason = f"the probe raised {ename}: {(evalue or '')[:300]}"
        elif status == "timeout":
            reason = f"still running after {job['probe_timeout']:g} s"
        else:
            reason = f"the kernel {kernel.death()}"
        emit("probe_failed", question=question, reason=reason, status=status, limit=job["probe_timeout"])


def run_fingerprints(kernel, job, answers):
    """Describe the watched functions as the kernel sees them now, after all the student's code ran."""
    out = os.path.join(answers, f"{secrets.token_hex(8)}.json")
    status = kernel.run(snippet(_FINGERPRINTS, {"source": job["fingerprint_source"], "watched": job["watched"],
                                                "out": out}), 60, silent=True)[0]
    try:
        if status == "ok":
            emit("fingerprints", values=read_json(out, 1 << 20))
    except (OSError, ValueError):
        pass  # no fingerprints: the parent notes that the tamper check did not run


def run_public(kernel, job, answers):
    """Run the public test cases (0 points) for their messages, within a short budget of their own."""
    deadline = time.monotonic() + PUBLIC_SECONDS
    for question, source in job["public"].items():
        left = deadline - time.monotonic()
        if not kernel.alive() or left <= 1:
            return  # the parent shows these tests as not run
        out = os.path.join(answers, f"{secrets.token_hex(8)}.json")
        status = kernel.run(snippet(_PUBLIC, {"source": source, "question": question, "out": out}),
                            min(left, PUBLIC_SECONDS / 2), silent=True)[0]
        if status == "ok":
            try:
                emit("public", question=question, results=read_json(out, 1 << 20))
            except (OSError, ValueError):
                pass


def main():
    job = json.loads(sys.stdin.read())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        run_job(job)
    except Exception as exc:  # report, never hang: the parent turns this into a status
        emit("sandbox_error", error=f"{type(exc).__name__}: {exc}"[:1000])
    finally:
        stop_descendants()  # first, so that nothing changes the folder while it is checked
        try:
            emit("files", changed=changed_files(job["workdir"], job.get("expected") or {}))
        except Exception:  # without this event the parent checks the folder it can see
            pass


def stop_descendants():
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


def changed_files(workdir, expected):
    """Files the run wrote into match/ or tests/; `expected` is {relative path: [size, sha256]} of match/."""
    changed = [f"{folder}/ was replaced by a link" for folder in ("match", "tests")
               if os.path.islink(os.path.join(workdir, folder))]
    for folder in ("match", "tests"):
        top = os.path.join(workdir, folder)
        if os.path.islink(top):
            continue
        for parent, dirs, names in os.walk(top):  # never follows symlinks below the top
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                rel = os.path.relpath(os.path.join(parent, name), workdir).replace(os.sep, "/")
                if not rel.endswith(".pyc") and not _same_file(os.path.join(parent, name), expected.get(rel)):
                    changed.append(f"{rel} was {'changed' if rel in expected else 'written'}")
            if len(changed) > 20:  # enough to say so; a folder of a million files must not stall us
                return changed
    return changed + [f"{rel} was deleted" for rel in expected if not os.path.isfile(os.path.join(workdir, rel))]


def _same_file(path, want):
    """Is `path` a regular file (not a link or pipe) of want's [size, sha256]?"""
    import hashlib

    info = os.lstat(path)
    if want is None or not stat.S_ISREG(info.st_mode) or info.st_size != want[0]:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == want[1]


if __name__ == "__main__":
    main()
