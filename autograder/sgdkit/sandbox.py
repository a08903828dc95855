"""Run ONE submission in an isolated child: the only place student code runs during `sgdkit grade`.

The batch's fork server (forkserver.py) forks it, in new namespaces where the
machine allows (see isolation.py for the modes), and runs main(). The parent
(batch.py) writes the Job on stdin as two JSON lines, its CONFINEMENT keys
first and then the rest, and reads JSON lines from stdout:

    {"event": "isolation", "notes": [...]}          how well the child is isolated
    {"event": "kernel"}                             the kernel answers; only now is the rest of the job read
    {"event": "cell", "index": 7}                   code cell 7 (counted from 1) started
    {"event": "cell_error", "index": 7, "ename": ..., "evalue": ...}
    {"event": "notebook", "state": "done" | "timeout" | "died", ...}
    {"event": "public", "question": q, "results": [...]}   before anything of the grader's is loaded
    {"event": "probe", "question": q, "data": {...}} | {"event": "probe_failed", "question": q, "reason": ...}
    {"event": "fingerprints", "values": {...}}      what numpy/doctest/otter/... look like now
    {"event": "output", "bytes": n}
    {"event": "done"}                               or {"event": "sandbox_error", "error": ...}
    {"event": "files", "changed": [...]}            match/ and tests/ rewritten, checked once all is dead

Nothing here judges anything, and nothing the kernel gets knows an answer: it is
forked from this process before the job's second line (the probes and their
stand-ins) is read, and each probe brings only the probe code and its own
prerequisites' stand-ins (see the trust boundary in docs/architecture.md).
Every event carries `at`, the wall clock, for the benchmark's profile. The data
goes back as strict JSON
(no NaN or Infinity) and the parent decides the score. The steps live apart:
jail.py confines this process before the kernel starts (cgroups, rlimits,
loopback, a private read-only root) and kills what is left after it;
kernel.py starts the kernel as the submission's uid, with its output away from
this process's stdout, so student code cannot write protocol lines;
kernel_code.py is what runs inside it.
"""
import json
import os
import signal
import stat
import sys
import time
from typing import Any, NoReturn, NotRequired, TypedDict

# Imported by the fork server, before any chroot, which leaves no sgdkit to import; hence no sgdkit import
# inside a function.
from sgdkit import jail, kernel_code
from sgdkit.kernel import Kernel

MAX_DATA_BYTES = 32 << 20  # a probe's JSON answer larger than this is refused
PUBLIC_SECONDS = 20.0  # for all public tests together: tiny examples, feedback only


class Step(TypedDict):
    """One question to probe (Stage.probes); the job lists them in prerequisite order."""

    question: str  # the question's name, e.g. "matrix_abs"
    inputs: dict[str, Any]  # JSON arguments the grader drew for it from the submission's seed
    stand_ins: dict[str, str]  # {prerequisite question: source defining PATCHES}: correct answers it builds on


class Job(TypedDict):
    """All the sandbox is told, as JSON on stdin: one submission, what to run, and its limits.

    Keys a parent sends beyond these are ignored.
    """

    workdir: str  # absolute path of the submission's folder (notebook, match/): the kernel's cwd
    cells: list[tuple[int, str]]  # (code cell number from 1, source) to run in order; JSON makes them lists
    expected: dict[str, list[Any]]  # {"match/<path>": [size in bytes, sha256 hex]} the workdir starts with
    public: dict[str, str]  # {question: its otter test file with the hidden cases cut out}
    probes: list[Step]  # every autograded question, prerequisites first
    probe_files: dict[str, str]  # {path in the package: source} of the probe package (the stage's probes only)
    probe_module: str  # the stage's module in that package, e.g. "losses"
    package: str  # a fresh random name to load the probe package under, e.g. "_sgdkit_probe_0a1b2c3d4e5f"
    timeout: float  # seconds for all the notebook's cells together
    probe_timeout: float  # seconds for each question's probe
    memory: int  # bytes of address space per process (RLIMIT_AS); the cgroup caps them together
    cpu: int  # seconds of CPU time per process (RLIMIT_CPU)
    disk: int  # bytes: the largest file (RLIMIT_FSIZE) and, with namespaces, the workdir's tmpfs
    processes: int  # processes of the kernel's uid (RLIMIT_NPROC); applied only with a uid of its own
    namespaces: bool  # in new namespaces (forkserver.py): bring up loopback and chroot into a private root
    newroot: str  # an empty folder to build that private root on
    cgroups: NotRequired[list[str]]  # the submission's cgroup folders, joined first thing (absent or []: none)
    uid: NotRequired[int]  # the kernel's uid, only when the grader is root; else the kernel runs as ours


# The job's first line: all the sandbox needs to confine itself and start the kernel, and nothing it may not see.
CONFINEMENT = ("workdir", "memory", "cpu", "disk", "processes", "namespaces", "newroot", "cgroups", "uid")


def job_lines(job: Job) -> bytes:
    """The job as the sandbox reads it: its CONFINEMENT keys on one line, then the rest."""
    first = {k: v for k, v in job.items() if k in CONFINEMENT}
    rest = {k: v for k, v in job.items() if k not in CONFINEMENT}
    return (json.dumps(first) + "\n" + json.dumps(rest) + "\n").encode()


def emit(event: str, **fields: Any) -> None:
    """One protocol line to the parent, stamped with the wall clock (the benchmark's profile reads it)."""
    sys.stdout.write(json.dumps({"event": event, **fields, "at": time.time()}) + "\n")
    sys.stdout.flush()


def read_json(path: str, limit: int = MAX_DATA_BYTES) -> Any:
    """Parse a JSON file the kernel wrote: a regular file, not a link or a pipe, and not too large."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("answer is not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"answer is larger than {limit} bytes")
    return json.loads(data, parse_constant=_not_finite, parse_float=_finite)


def _not_finite(token: str) -> NoReturn:
    """NaN, Infinity and -Infinity are not JSON: a probe never writes them, so the student did."""
    raise ValueError(f"answer holds {token}")


def _finite(text: str) -> float:
    """A JSON number as a float, refusing ones too large for a float (1e999 would parse as inf)."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"answer holds {text[:20]}, which is not a finite float")
    return value


def run_job(job: Job) -> None:
    """Confine, start the kernel, read the rest of the job into `job`; then run the notebook, the public tests,
    the probes and the tamper check, reporting as it goes.

    The public tests come first, while nothing of the grader's is in the
    kernel, so their messages (which reach the student's feedback) can quote
    nothing hidden. Each probe brings only what its question may see.
    """
    emit("isolation", notes=jail.isolate(job))
    kernel = Kernel(job["workdir"], job.get("uid"))  # a fork of this process, which knows only the first line
    emit("kernel")
    try:
        job.update(json.loads(sys.stdin.read()))
        run_cells(kernel, job)
        if kernel.alive():
            run_public(kernel, job)
        run_probes(kernel, job)  # reports every question, even when the kernel is gone
        if kernel.alive():
            run_fingerprints(kernel)
        emit("output", bytes=kernel.stream_bytes)
    finally:
        kernel.kill()
    emit("done")


def run_cells(kernel: Kernel, job: Job) -> None:
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


def run_probes(kernel: Kernel, job: Job) -> None:
    """Probe every question in prerequisite order, one execution each, with its own time budget.

    A probe carries the probe package and the stand-ins of its question's
    prerequisites only, which were themselves probed (and reported) before.
    """
    for step in job["probes"]:
        question = step["question"]
        if not kernel.alive():
            emit("probe_failed", question=question, reason=f"the kernel {kernel.death()} before this question")
            continue
        out = kernel.answer_file()
        status, ename, evalue, _ = kernel.run(kernel_code.probe_code(job, step, out), job["probe_timeout"],
                                              silent=True)
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


def run_fingerprints(kernel: Kernel) -> None:
    """Describe the watched functions as the kernel sees them now, after all the student's code ran."""
    out = kernel.answer_file()
    status = kernel.run(kernel_code.fingerprint_code(out), 60, silent=True).status
    try:
        if status == "ok":
            emit("fingerprints", values=read_json(out, 1 << 20))
    except (OSError, ValueError):
        pass  # no fingerprints: the parent notes that the tamper check did not run


def run_public(kernel: Kernel, job: Job) -> None:
    """Run the public test cases (0 points) for their messages, within a short budget of their own."""
    deadline = time.monotonic() + PUBLIC_SECONDS
    for question, source in job["public"].items():
        left = deadline - time.monotonic()
        if not kernel.alive() or left <= 1:
            return  # the parent shows these tests as not run
        out = kernel.answer_file()
        status = kernel.run(kernel_code.public_code(question, source, out), min(left, PUBLIC_SECONDS / 2),
                            silent=True).status
        if status == "ok":
            try:
                emit("public", question=question, results=read_json(out, 1 << 20))
            except (OSError, ValueError):
                pass


def read_line(fd: int = 0) -> bytes:
    """One line of `fd`, read a byte at a time: nothing after it is taken into this process's memory."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return bytes(line)


def main() -> None:
    """Run the job on stdin (forkserver.py calls this in the forked sandbox)."""
    job: Job = json.loads(read_line())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        run_job(job)
    except Exception as exc:  # report, never hang: the parent turns this into a status
        emit("sandbox_error", error=f"{type(exc).__name__}: {exc}"[:1000])
    finally:
        jail.stop_descendants()  # first, so that nothing changes the folder while it is checked
        try:
            emit("files", changed=changed_files(job["workdir"], job["expected"]))
        except Exception:  # without this event (or the job's second line) the parent checks the folder it can see
            pass


def changed_files(workdir: str, expected: dict[str, list[Any]]) -> list[str]:
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


def _same_file(path: str, want: list[Any] | None) -> bool:
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

