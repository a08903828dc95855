"""Start the student's ipykernel as the submission's uid, and run code in it under hard deadlines.

The sandbox starts one Kernel, once it is confined (jail.py): in a clean
environment with a private HOME inside the workdir, through isolation.preexec
(no capabilities, the submission's uid), with its output counted and dropped
so nothing it prints reaches the sandbox's protocol on stdout.
"""
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, NamedTuple

from . import isolation

INTERRUPT_GRACE = 5.0  # seconds a kernel gets to honour Ctrl-C before it is killed


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
        python = sys.executable
        fds: tuple[int, ...] = ()
        if user is not None:
            os.chown(connection_file, user, user)  # we wrote it 0600: the kernel must read it
            python, fds = isolation.kernel_python(env["HOME"])
        # Read back through our own descriptor: the kernel may replace the path, not our fd.
        self.stderr = tempfile.TemporaryFile(dir=env["TMPDIR"])
        self.process = subprocess.Popen(
            [python, "-m", "ipykernel_launcher", "-f", connection_file, "--HistoryManager.hist_file=:memory:"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
            start_new_session=True, pass_fds=fds, preexec_fn=isolation.preexec(user))
        self.client = BlockingKernelClient()
        self.client.load_connection_info(info)
        self.client.start_channels()
        self.stream_bytes = 0  # printed by the kernel so far
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


def kernel_env(workdir: str, user: int | None) -> dict[str, str]:
    """A clean environment: no inherited secrets, one BLAS thread, a private HOME in `workdir`, given to `user`."""
    home = os.path.join(workdir, ".sgdkit")
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home, "TMPDIR": os.path.join(home, "tmp"), "LANG": "C.UTF-8",
        "IPYTHONDIR": os.path.join(home, "ipython"), "MPLCONFIGDIR": os.path.join(home, "matplotlib"),
        "JUPYTER_CONFIG_DIR": os.path.join(home, "jupyter"), "JUPYTER_DATA_DIR": os.path.join(home, "jupyter"),
        "JUPYTER_RUNTIME_DIR": os.path.join(home, "runtime"), "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    # The answers folder too: made here, so that it is the kernel's like the rest of HOME.
    for path in (home, env["TMPDIR"], env["JUPYTER_RUNTIME_DIR"], os.path.join(home, "answers")):
        os.makedirs(path, exist_ok=True)
    if user is not None:
        isolation.hand_over(workdir, user)
    return env
