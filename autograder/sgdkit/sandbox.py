"""Run ONE submission in an isolated child: the only place student code runs during `sgdkit grade`.

The parent (grade.py) starts this file as a script, under
`unshare -mn --pid --fork --kill-child --mount-proc` where the machine allows
(own mount, network and pid namespaces), writes a JSON job on stdin and reads
JSON lines from stdout:

    {"event": "isolation", "notes": [...]}          how well the child is isolated
    {"event": "cell", "index": 7}                   cell 7 (1-based, of all cells) started
    {"event": "cell_error", "index": 7, "ename": ..., "evalue": ...}
    {"event": "notebook", "state": "done" | "timeout" | "died", ...}
    {"event": "probe", "question": q, "data": {...}} | {"event": "probe_failed", "question": q, "reason": ...}
    {"event": "public", "question": q, "results": [...]}
    {"event": "fingerprints", "values": {...}}      what numpy/doctest/otter/... look like now
    {"event": "output", "bytes": n}
    {"event": "done"}

Nothing here judges anything: the probes' data goes back as JSON and the parent
decides the score. Before the kernel starts, this process applies rlimits,
brings up loopback and chroots into a read-only view of just the system and
Python, with the submission's folder the only writable (and only visible)
place; the kernel runs without capabilities and with its output away from
this process's stdout, so student code cannot write protocol lines.
"""
import json
import os
import secrets
import signal
import stat
import sys
import time

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
MAX_FILE_BYTES = 256 << 20  # no file the notebook writes may grow past this
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

    def describe(obj):
        if isinstance(obj, property):
            return ["property", describe(obj.fget)]
        if isinstance(obj, (classmethod, staticmethod)):
            return [type(obj).__name__, describe(obj.__func__)]
        func = getattr(obj, "__func__", obj)
        code = getattr(func, "__code__", None)
        if isinstance(code, type(describe.__code__)):
            home = _sys.modules.get(getattr(func, "__module__", None) or "")
            return ["code", type(obj).__name__, getattr(func, "__qualname__", None), code.co_filename,
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
import json, sys
job = __job__
package = sys.modules.get(job['package'])
if package is None:
    ns = {}
    exec(job['loader'], ns)
    package = ns['load_package'](job['package'], job['files'])
data = package.STAGES[job['stage']].probe(job['question'], __user_ns__, job['inputs'])
with open(job['out'], 'w') as f:
    json.dump(data, f)
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

    def __init__(self, workdir, env):
        import subprocess
        import tempfile

        from jupyter_client import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        runtime = os.path.join(env["HOME"], "runtime")
        os.makedirs(runtime, exist_ok=True)
        connection_file, info = write_connection_file(
            os.path.join(runtime, "kernel.json"), ip="127.0.0.1", key=secrets.token_hex(16).encode())
        # Read back through our own descriptor: the kernel may replace the path, not our fd.
        self.stderr = tempfile.TemporaryFile(dir=env["TMPDIR"])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file,
             "--HistoryManager.hist_file=:memory:"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.stderr, start_new_session=True, preexec_fn=drop_capabilities)
        self.client = BlockingKernelClient()
        self.client.load_connection_info(info)
        self.client.start_channels()
        self.stream_bytes = 0
        try:
            self.client.wait_for_ready(timeout=60)
        except RuntimeError as exc:
            raise RuntimeError(f"the kernel did not start ({exc}): {self.stderr_tail(300).strip()}") from None

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
    """Apply rlimits; in the new namespaces bring up loopback and build a private root. Notes on failures."""
    import ctypes
    import resource

    notes = []
    # Inherited by the kernel. Python ignores SIGXFSZ, so a too-large file is an OSError, not a kill.
    for limit, value in ((resource.RLIMIT_AS, job.get("memory")), (resource.RLIMIT_CPU, job.get("cpu")),
                         (resource.RLIMIT_FSIZE, MAX_FILE_BYTES), (resource.RLIMIT_CORE, 0)):
        if value is not None:
            resource.setrlimit(limit, (value, value))
    libc = ctypes.CDLL(None, use_errno=True)
    if job.get("namespaces"):
        notes += loopback_up()
        try:
            private_root(libc, job["workdir"], job["newroot"])
        except OSError as exc:
            notes.append(f"could not hide this machine's files from the notebook ({exc})")
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans of the kernel stay ours to kill
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: the kernel cannot open our /proc fds
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


def private_root(libc, workdir, newroot):
    """chroot into a read-only tree of just the system, Python and the workdir (the only writable place).

    Everything else (the kit's solutions and zips, other submissions, the
    instructor's files, raw disks) is simply not there for student code to read.
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
    bind(workdir, writable=True)
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


def drop_capabilities():
    """In the kernel, before exec: no capabilities ever (so no remount, no chroot escape, no ptrace)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    for cap in range(64):  # PR_CAPBSET_DROP until the kernel says there are no more
        if libc.prctl(24, cap, 0, 0, 0) != 0:
            break


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
    for path in (home, env["TMPDIR"]):
        os.makedirs(path, exist_ok=True)
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
    return json.loads(data)


def snippet(source, job):
    """Code for the kernel: run `source` in a fresh namespace holding `job` and the student's globals."""
    return _SNIPPET.format(source=source, job=json.dumps(job))


def run_job(job):
    """Run the notebook, then the probes, public tests and fingerprints, reporting as it goes."""
    emit("isolation", notes=isolate(job))
    kernel = Kernel(job["workdir"], kernel_env(job))
    answers = os.path.join(job["workdir"], ".sgdkit", "answers")
    os.makedirs(answers, exist_ok=True)
    try:
        run_cells(kernel, job)
        if kernel.alive():
            run_probes(kernel, job, answers)
        if kernel.alive():  # before the public tests: they give feedback only, and must not hide tampering
            run_fingerprints(kernel, job, answers)
        if kernel.alive():
            run_public(kernel, job, answers)
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
    """Probe every question, one execution each, with its own time budget."""
    for question in job["questions"]:
        if not kernel.alive():
            emit("probe_failed", question=question, reason=f"the kernel {kernel.death()} before this question")
            continue
        out = os.path.join(answers, f"{secrets.token_hex(8)}.json")  # nothing the notebook could pre-plant
        status, ename, evalue, _ = kernel.run(snippet(_PROBE, {
            "package": job["package"], "loader": job["loader_source"], "files": job["checks"],
            "stage": job["stage"], "question": question, "inputs": job["inputs"][question], "out": out,
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
        if os.getpid() != 1:  # as pid 1 of our own namespace, our exit kills everything in it
            import psutil

            for child in psutil.Process().children(recursive=True):
                try:
                    child.kill()
                except psutil.Error:
                    pass


if __name__ == "__main__":
    main()
