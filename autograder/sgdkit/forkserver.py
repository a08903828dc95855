"""One clean, warm process per batch that forks each submission's sandbox, so the imports are paid once.

The parent (batch.py) starts it as `python -I forkserver.py FD [--namespaces]
[--preload LIBRARY,...]`, FD its end of a socketpair. It imports everything a
sandbox and its kernel need (sandbox.py, jupyter_client, ipykernel, IPython)
and the libraries the stage's notebook imports (matplotlib.pyplot, say), and
then only waits.
For each submission the parent sends a request with three descriptors, the
sandbox's stdin, stdout and stderr. The server forks: the child enters new
namespaces where the batch has them (isolation.unshare), forks once more to
be the first process of its pid namespace, as `unshare --fork --kill-child
--mount-proc` would, and runs sandbox.main. The server answers with the
child's pid, and later with its exit code.

It never reads a job or runs student code, and it holds nothing of any
submission, so nothing passes from one fork to the next: the sandbox reads its
job only after the fork, and forks its kernel before it reads the part that
holds stand-ins (sandbox.py). No kernel serves two submissions. The server
stays single-threaded, so a fork copies no lock another thread held.
"""
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from typing import IO, Any, NoReturn

MESSAGE = 4096  # bytes: a request or a reply is far smaller


def serve(sock: socket.socket, namespaces: bool) -> None:
    """Fork a sandbox per request, report the pids and the exit codes, until the parent closes its end."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below
    root = os.geteuid() == 0
    while True:
        ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, MESSAGE)
            reap(sock)
        if sock.fileno() in ready:
            message, fds, _, _ = socket.recv_fds(sock, MESSAGE, 3)
            if not message:
                return  # the parent is gone
            try:
                pid: int | None = os.fork()
            except OSError:  # out of processes or memory: this submission fails, the batch goes on
                pid = None
            if pid == 0:
                sandbox_child(fds, namespaces, root)
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"pid": pid}).encode())


def reap(sock: socket.socket) -> None:
    """Tell the parent the exit code of every child that ended."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        sock.send(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def sandbox_child(fds: list[int], namespaces: bool, root: bool) -> NoReturn:
    """In the forked child: the request's descriptors as stdio, nothing else of the server's; then the sandbox."""
    from sgdkit import isolation, sandbox

    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # its own process group, which the parent kills whole
        isolation.name_process("sgdkit-sandbox")
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        if namespaces:
            isolation.unshare(root)
            pid = os.fork()
            if pid:
                _exit_as(os.waitpid(pid, 0)[1])
            isolation.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: --kill-child
            isolation.mount_proc()
        sandbox.main()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _exit_as(status: int) -> NoReturn:
    """End as the namespace's first process ended: its exit code, or killed by its signal."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code if code >= 0 else 128 - code)


def preload(libraries: list[str]) -> None:
    """Import what every sandbox and kernel imports, once: the forks share it (each its own copy)."""
    import importlib

    import jupyter_client  # noqa: F401  (the sandbox's client)
    import psutil  # noqa: F401
    from ipykernel import debugger, ipkernel, kernelapp, zmqshell  # noqa: F401

    from sgdkit import sandbox  # noqa: F401

    for name in filter(None, libraries):
        try:
            importlib.import_module(name)
        except Exception:  # left for the kernel's own import to fail, where the student sees why
            pass


# ---------------------------------------------------------------- the parent's side


class ForkServer:
    """The parent's handle on a batch's fork server: spawn() a sandbox; close() when the batch ends."""

    def __init__(self, namespaces: bool, env: dict[str, str], libraries: list[str]) -> None:
        self.args = (["--namespaces"] if namespaces else []) + ["--preload", ",".join(libraries)]
        self.env = env
        self.lock = threading.Lock()  # one request at a time: replies come back in order
        self.server = _Server(self.args, env)

    def spawn(self) -> "Sandbox":
        """Fork a new sandbox; OSError if the server could not."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        try:
            with self.lock:
                if self.server.process.poll() is not None:  # killed (say by the OOM killer): go on with a new one
                    self.server.close()
                    self.server = _Server(self.args, self.env)
                server = self.server
                pid = server.request([stdin_r, stdout_w, stderr_w])
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        if pid is None:
            for fd in (stdin_w, stdout_r, stderr_r):
                os.close(fd)
            raise OSError(f"the fork server did not start a sandbox: {server.errors_tail()}")
        return Sandbox(server, pid, os.fdopen(stdin_w, "wb"), os.fdopen(stdout_r, "rb"), os.fdopen(stderr_r, "rb"))

    def close(self) -> None:
        self.server.close()


class _Server:
    """One fork server process, and what it said: the pid of each request, in order, and exit codes."""

    def __init__(self, options: list[str], env: dict[str, str]) -> None:
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.errors = tempfile.TemporaryFile()
        args = [sys.executable, "-I", __file__, str(theirs.fileno())] + options
        self.process = subprocess.Popen(args, pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self.errors, start_new_session=True)
        theirs.close()
        self.pids: list[int | None] = []
        self.exits: dict[int, int] = {}
        self.ended = False  # the server closed its end: no more replies
        self.news = threading.Condition()
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        while True:
            try:
                data = self.sock.recv(MESSAGE)
            except OSError:
                data = b""
            with self.news:
                if not data:
                    self.ended = True
                elif "pid" in (message := json.loads(data)):
                    self.pids.append(message["pid"])
                else:
                    self.exits[message["exited"]] = message["code"]
                self.news.notify_all()
            if not data:
                return

    def request(self, fds: list[int]) -> int | None:
        """Ask for a sandbox on these stdin, stdout and stderr descriptors: its pid (None: the server is gone)."""
        try:
            socket.send_fds(self.sock, [b"fork"], fds)
        except OSError:
            return None
        with self.news:
            if not self.news.wait_for(lambda: self.pids or self.ended, timeout=60):
                self.process.kill()  # stalled: a late reply would answer the next request, so start anew
            return self.pids.pop(0) if self.pids else None  # None too where the fork failed

    def exit_code(self, pid: int, timeout: float) -> int | None:
        """A sandbox's exit code once the server reaped it (None if not within `timeout`, or the server ended)."""
        with self.news:
            self.news.wait_for(lambda: pid in self.exits or self.ended, timeout=timeout)
            return self.exits.pop(pid, None)

    def errors_tail(self) -> str:
        self.errors.seek(0)
        return self.errors.read()[-1000:].decode("utf-8", "replace").strip() or "no message"

    def close(self) -> None:
        """End the server (its sandboxes are the batch's to kill). It holds nothing to save: killed, it skips
        an interpreter's teardown of everything it imported."""
        self.process.kill()
        self.process.wait()
        self.sock.close()
        self.errors.close()


class Sandbox:
    """One forked sandbox, as the parent sees it: its pipes, its pid, its exit code (like subprocess.Popen)."""

    def __init__(self, server: _Server, pid: int, stdin: IO[bytes], stdout: IO[bytes], stderr: IO[bytes]):
        self.server, self.pid = server, pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None
        self.out, self.err = bytearray(), bytearray()
        self.pending = b""  # of stdin, still to write

    def communicate(self, data: bytes | None = None, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Write `data`, then read stdout and stderr to their ends, as Popen.communicate does (and, like it,
        raise subprocess.TimeoutExpired after `timeout` seconds; call again to go on reading)."""
        import selectors
        import time

        if data is not None:
            self.pending = data
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            for pipe, events in ((self.stdout, selectors.EVENT_READ), (self.stderr, selectors.EVENT_READ),
                                 (self.stdin, selectors.EVENT_WRITE)):
                if not pipe.closed and (pipe is not self.stdin or self.pending):
                    os.set_blocking(pipe.fileno(), False)
                    sel.register(pipe, events)
            if not self.stdin.closed and not self.pending:
                self.stdin.close()
            while sel.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired("sandbox", timeout or 0)
                for key, _ in sel.select(left):
                    stream: Any = key.fileobj
                    if stream is self.stdin:
                        try:
                            written = os.write(stream.fileno(), self.pending[:1 << 16])
                        except BrokenPipeError:
                            written = len(self.pending)
                        self.pending = self.pending[written:]
                        if not self.pending:
                            sel.unregister(stream)
                            stream.close()
                        continue
                    chunk = os.read(stream.fileno(), 1 << 16)
                    if chunk:
                        (self.out if stream is self.stdout else self.err).extend(chunk)
                    else:
                        sel.unregister(stream)
                        stream.close()
        return bytes(self.out), bytes(self.err)

    def wait(self, timeout: float = 30) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid, timeout)
        return self.returncode

    def close(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            if not stream.closed:
                stream.close()


if __name__ == "__main__":
    from sgdkit.isolation import name_process

    name_process("sgdkit-forks")
    options = sys.argv[2:]
    # Python's recipe for a process that forks without exec: imports make only long-lived objects, so no
    # collections while importing; then frozen, so that the forks' collections skip all of it (and leave
    # its pages shared).
    gc.disable()
    preload(options[options.index("--preload") + 1].split(",") if "--preload" in options else [])
    gc.freeze()
    gc.enable()
    serve(socket.socket(fileno=int(sys.argv[1])), "--namespaces" in options)
