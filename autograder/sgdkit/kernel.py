"""Start the student's ipykernel as the submission's uid, and run code in it under hard deadlines.

The sandbox starts one Kernel, once it is confined (jail.py) and before it
has read the rest of its job: a fork of the sandbox, so ipykernel and IPython
are already imported (the fork server imported them once per batch). The
child drops every descriptor but its own, takes a clean environment with a
private HOME inside the workdir, goes through isolation.preexec (no
capabilities, the submission's uid) and serves as the ipykernel; its output
is counted and dropped, so nothing it prints reaches the sandbox's protocol
on stdout.
"""
import os
import random
import secrets
import signal
import sys
import tempfile
import time
import traceback
from typing import Any, NamedTuple, NoReturn

from . import isolation, kernel_code

INTERRUPT_GRACE = 5.0  # seconds a kernel gets to honour Ctrl-C before it is killed
START_SECONDS = 60.0  # for the kernel to answer, however busy the machine


class Outcome(NamedTuple):
    """How one execution ended."""

    status: str  # "ok", "error", "timeout" (interrupted or killed) or "died"
    ename: str | None  # on "error": the exception's class name
    evalue: str | None  # on "error": its message
    recovered: bool  # the kernel still answers: it ended the execution itself


class Kernel:
    """An ipykernel process in `workdir`, driven over jupyter_client with hard deadlines."""

    def __init__(self, workdir: str, user: int | None) -> None:
        """Start it as `user` (None: our own uid) and wait until it answers."""
        from jupyter_client import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        env = kernel_env(workdir, user)
        self.answers = os.path.join(env["HOME"], "answers")
        connection_file, info = write_connection_file(
            os.path.join(env["JUPYTER_RUNTIME_DIR"], "kernel.json"), ip="127.0.0.1",
            key=secrets.token_hex(16).encode())
        if user is not None:
            os.chown(connection_file, user, user)  # we wrote it 0600: the kernel must read it
        # Read back through our own descriptor: the kernel may replace the path, not our fd.
        self.stderr = tempfile.TemporaryFile(dir=env["TMPDIR"])
        steps = isolation.preexec(user)
        sys.stdout.flush()  # nothing buffered may be written twice
        pid = os.fork()  # before any thread of ours exists: the client's start below
        if pid == 0:
            become_kernel(workdir, env, user, steps, connection_file, self.stderr.fileno())
        self.process = Child(pid)
        self.client = BlockingKernelClient()
        self.client.load_connection_info(info)
        self.client.start_channels()
        self.stream_bytes = 0  # printed by the kernel so far
        self._wait_ready(time.monotonic() + START_SECONDS)

    def _wait_ready(self, deadline: float) -> None:
        """Until the kernel answers kernel_info and its output channel is connected (as wait_for_ready checks,
        polled finely instead of in its 0.2 s sleeps)."""
        from queue import Empty

        while True:
            msg_id = self.client.kernel_info()
            while time.monotonic() < deadline and self.alive():
                if self._reply(msg_id, 0.01) is not None:
                    break
            else:
                raise RuntimeError(f"the kernel did not start (it {self.death()}): {self.stderr_tail(300).strip()}")
            try:  # the reply's status messages show that output reaches us; else ask again
                self.client.get_iopub_msg(timeout=0.5)
                return
            except Empty:
                pass

    def alive(self) -> bool:
        return self.process.poll() is None

    def death(self) -> str:
        """A short description of how the kernel process ended."""
        code = self.process.poll()
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def answer_file(self) -> str:
        """A fresh path for the kernel to write an answer to: nothing the notebook could have planted there."""
        return os.path.join(self.answers, f"{secrets.token_hex(8)}.json")

    def run(self, code: str, seconds: float, silent: bool = False) -> Outcome:
        """Execute `code` within `seconds`: Ctrl-C at the deadline, killed INTERRUPT_GRACE later."""
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
                    return Outcome("timeout", None, None, True)
                if content.get("status") == "error":
                    return Outcome("error", content.get("ename", ""), content.get("evalue", ""), True)
                return Outcome("ok", None, None, True)
            if not self.alive():
                return Outcome("died", None, None, False)
            now = time.monotonic()
            if now >= deadline and not interrupted:
                interrupted = True  # a Python-level loop stops on Ctrl-C; C-level work may not
                os.kill(self.process.pid, signal.SIGINT)
                deadline = now + INTERRUPT_GRACE
            elif now >= deadline:
                self.kill()
                return Outcome("timeout", None, None, False)

    def _reply(self, msg_id: str, wait: float) -> dict[str, Any] | None:
        from queue import Empty

        try:
            msg = self.client.get_shell_msg(timeout=wait)
        except Empty:
            return None
        return msg if msg.get("parent_header", {}).get("msg_id") == msg_id else None

    def _drain_iopub(self) -> None:
        """Count printed bytes and drop them: output never piles up in memory."""
        from queue import Empty

        for _ in range(1000):  # then look at the clock again, however fast the kernel prints
            try:
                msg = self.client.get_iopub_msg(timeout=0)
            except Empty:
                return
            if msg["msg_type"] == "stream":
                self.stream_bytes += len(msg["content"].get("text", ""))

    def stderr_tail(self, size: int = 600) -> str:
        """The end of the kernel's stderr, for crash messages."""
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - size))
        return self.stderr.read().decode("utf-8", "replace")

    def kill(self) -> None:
        """Kill the kernel and everything it started."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        self.client.stop_channels()


class Child:
    """A forked child's exit, as subprocess.Popen reports it: returncode None while it runs, -N for signal N."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self, flags: int = os.WNOHANG) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:  # reaped elsewhere (jail.stop_descendants): it is gone
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int | None:
        return self.poll(0)


def become_kernel(workdir: str, env: dict[str, str], user: int | None, preexec: Any, connection_file: str,
                  stderr: int) -> NoReturn:
    """In the forked child: keep nothing of the sandbox, drop to `user`, and serve as the ipykernel until killed.

    Nothing the sandbox holds at the fork knows an answer (sandbox.main reads
    the job only after this fork), and from here on only the kernel's own
    descriptors stay open: its stdio, and Python's folders where `user`
    cannot reach them by path.
    """
    code = 1
    exit_now, print_exc = os._exit, traceback.print_exc  # this module's globals are gone by the end
    try:
        os.setsid()  # its own process group, which kill() kills whole
        null = os.open(os.devnull, os.O_RDWR)
        for target, fd in ((0, null), (1, null), (2, stderr)):
            os.dup2(fd, target)
        python = isolation.reach_python(user)
        keep = sorted(python.values())
        for low, high in zip([2] + keep, keep + [os.sysconf("SC_OPEN_MAX")]):
            os.closerange(low + 1, high)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the sandbox interrupts with Ctrl-C
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(env)
        if python:
            isolation.reroute_python(python)
        sys.path.insert(0, "")  # the notebook's folder, for `import match` (the fork server runs with -I)
        preexec()
        isolation.name_process("sgdkit-kernel")  # only now, as its own uid: what runs under this name is untrusted
        if user is not None:  # setuid made it undumpable, which closes its own /proc/self/fd to it
            isolation.prctl(4, 1)  # PR_SET_DUMPABLE, as exec would have left it
        random.seed()  # not the fork server's sequence, which every kernel would share
        sys.modules["otter"] = kernel_code.inert_otter()
        sys.argv = ["ipykernel_launcher"]
        from ipykernel.kernelapp import IPKernelApp

        forget_the_grader()
        IPKernelApp.launch_instance(argv=["-f", connection_file, "--HistoryManager.hist_file=:memory:"])
        code = 0
    except BaseException:
        print_exc()
    finally:
        exit_now(code)


def forget_the_grader() -> None:
    """Drop every sgdkit module this fork inherited, and empty it: the kernel holds none of the grader's code.

    None of it knows an answer, but the probe driver and the sandbox's protocol are not the kernel's to read
    (the leak attacks look for them). Only the frames that called this still hold their code, and they never
    resume: become_kernel ends in os._exit.
    """
    modules, path = sys.modules, os.path  # this module is among them: after the first clear(), no globals
    home = path.dirname(path.abspath(__file__))
    doomed = [name for name, module in modules.items() if name.split(".")[0] == "sgdkit"
              or path.dirname(path.abspath(getattr(module, "__file__", None) or "/")) == home]  # the server's __main__
    for name in doomed:
        modules.pop(name).__dict__.clear()


# How a kernel's libraries run: matplotlib with no display, one BLAS thread. The fork server imports the
# stage's libraries with the same settings (batch.py), before any kernel is forked from it.
LIBRARY_ENV = {"MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def kernel_env(workdir: str, user: int | None) -> dict[str, str]:
    """A clean environment: no inherited secrets, one BLAS thread, a private HOME in `workdir`, given to `user`."""
    home = os.path.join(workdir, ".sgdkit")
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home, "TMPDIR": os.path.join(home, "tmp"), "LANG": "C.UTF-8",
        "IPYTHONDIR": os.path.join(home, "ipython"), "MPLCONFIGDIR": os.path.join(home, "matplotlib"),
        "JUPYTER_CONFIG_DIR": os.path.join(home, "jupyter"), "JUPYTER_DATA_DIR": os.path.join(home, "jupyter"),
        "JUPYTER_RUNTIME_DIR": os.path.join(home, "runtime"), **LIBRARY_ENV,
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    # The answers folder too: made here, so that it is the kernel's like the rest of HOME.
    for path in (home, env["TMPDIR"], env["JUPYTER_RUNTIME_DIR"], os.path.join(home, "answers")):
        os.makedirs(path, exist_ok=True)
    if user is not None:
        isolation.hand_over(workdir, user)
    return env
