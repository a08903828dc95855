"""Run a batch's submissions, each in its own sandbox: temp root, live children, cleanup even on Ctrl-C.

Per submission (`Batch.grade_one`): read and validate the notebook
(submissions.py), draw its probe inputs from its seed, start sandbox.py on it
in isolation (isolation.py), collect its JSON events, and score them
(scoring.py). Every submission gets a Result, whatever it or a grader bug did.
"""
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from . import isolation
from .forkserver import ForkServer, Sandbox
from .kernel import LIBRARY_ENV
from .results import Result, new_result
from .sandbox import Job, job_lines
from .scoring import Run, judge_run, otter_test_files, score_question
from .stage import Stage
from .submissions import Rejected, Submission, check_stage, code_cells, parse_notebook, read_notebook

log = logging.getLogger(__name__)
GIB = 1 << 30
DISK = 1 << 30  # default disk cap per submission
PROCESSES = 256  # default process cap per submission (threads count: the kernel alone has about 10)


@dataclass
class Settings:
    """Per-batch limits: notebook and per-question probe seconds, caps per submission, seed base, namespaces."""

    timeout: float
    probe_timeout: float
    memory: int  # bytes, for all of a submission's processes together (and RLIMIT_AS for each)
    seed: int
    disk: int = DISK  # bytes, for all its files together
    processes: int = PROCESSES
    namespaces: bool | None = None  # None: where the machine allows; False: never; True: required


def seed_for(base: int, digest: str) -> int:
    """Reproducible per submission, unknowable before the notebook's content is fixed."""
    return int(hashlib.sha256(f"{base}:{digest}".encode()).hexdigest()[:15], 16)


class Batch:
    """Shared state of one grading run: temp root, live children, cleanup even on Ctrl-C."""

    def __init__(self, spec: Stage, settings: Settings):
        from .kernel_code import WATCHED, fingerprints

        self.spec, self.settings = spec, settings
        self.children: set[Sandbox] = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.mode = isolation.detect(settings.namespaces)
        self.uids: set[int] = set()  # the kernels' uids of this batch, when the grader is root
        # The clean interpreter's view of watched functions; the kernel's must match.
        self.reference = fingerprints(WATCHED)
        self.public = {q: spec.public_source(q) for q in spec.questions}  # the same for every submission

    def __enter__(self) -> "Batch":
        self.root = Path(tempfile.mkdtemp(prefix="sgdkit-grade-"))
        if self.mode.root:  # kernels of their own uids may pass through to their 0700 workdir, never list it
            os.chmod(self.root, 0o711)
            if not self.mode.prefix and not isolation.reachable(str(self.root.parent)):
                os.rmdir(self.root)
                raise ValueError(f"the temp folder {self.root.parent} is closed to other users, so kernels running "
                                 "as their own uids could not reach their folders; set TMPDIR to a folder others "
                                 "may pass through, such as /tmp")
        self.mode.cgroups = isolation.Cgroups.create()
        self.note = self.mode.describe()  # in every result's notes
        log.info("%s", self.note)
        # The fork server imports the stage's libraries as the kernels would (matplotlib builds its font
        # list there, once).
        env = {**_sandbox_env(), **LIBRARY_ENV, "MPLCONFIGDIR": str(self.root / "matplotlib")}
        self.server = ForkServer(self.mode.prefix is not None, env, self.spec.preload)
        # Scoring runs otter's test files (scoring.py): load them while the first sandboxes run.
        threading.Thread(target=otter_test_files, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.server.close()
        if self.mode.cgroups:
            self.mode.cgroups.close()
        for uid in self.uids if exc[0] else ():  # interrupted: the workers' own sweeps may have been cut short
            isolation.sweep(uid)
        shutil.rmtree(self.root, ignore_errors=True)

    def stop(self) -> None:
        """Kill every sandbox still running."""
        with self.lock:
            self.stopping = True
            children = list(self.children)
        for proc in children:
            kill_tree(proc)

    def grade_one(self, sub: Submission, digest: str) -> Result:
        """One submission -> its Result: always a row, whatever the submission (or a bug) did."""
        start = time.monotonic()
        result = new_result(sub.file, digest, self.spec.name)
        try:
            result.update(self._grade(sub))  # type: ignore[typeddict-item]  # judge_run's keys are Result's
        except Exception as exc:  # a grader bug must not cost the rest of the batch
            log.error("internal error on %s: %s: %s", sub.file, type(exc).__name__, exc)
            result["status"] = "crashed"
            result["detail"] = f"the grader failed on this file ({type(exc).__name__}: {exc})"[:500]
            result["notes"] = [f"crashed: {result['detail']}"]
        result["seconds"] = round(time.monotonic() - start, 2)
        log.debug("%s: %s, %g of %g points in %.1f s", sub.file, result["status"], result["total"],
                  result["possible"], result["seconds"])
        return result

    def _grade(self, sub: Submission) -> dict[str, Any]:
        from .sandbox import changed_files

        spec = self.spec
        try:
            nb_bytes = read_notebook(sub.path)
            nb, notes = parse_notebook(nb_bytes)
            check_stage(nb, spec)
        except Rejected as rejected:
            questions = {q: score_question(spec, q, {}, None, f"not graded ({rejected.kind})") for q in spec.questions}
            return {"status": rejected.kind, "detail": str(rejected), "notes": [f"{rejected.kind}: {rejected}"],
                    "questions": questions, "possible": sum(v["possible"] for v in questions.values())}
        seed = seed_for(self.settings.seed, hashlib.sha256(nb_bytes).hexdigest())
        inputs = {q: spec.module.make_inputs(q, seed) for q in spec.questions}
        workdir = Path(tempfile.mkdtemp(dir=self.root))
        try:
            run = self.run_sandbox(workdir, nb_bytes, code_cells(nb), inputs)
            files = next((e for e in run.events if e.get("event") == "files"), None)
            # The sandbox checks the copy the kernel saw; without its word, the folder we can see.
            run.changed = (files.get("changed") or []) if files else changed_files(str(workdir), spec.library_files())
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.rmtree(str(workdir) + ".root", ignore_errors=True)
        return {"seed": seed, **judge_run(spec, run, inputs, self.reference, [self.note] + notes,
                                          self.settings.memory)}

    def run_sandbox(self, workdir: Path, nb_bytes: bytes, cells: list[tuple[int, str]], inputs: dict[str, Any]) -> Run:
        """Have the fork server start a sandbox on this submission, and collect its JSON events."""
        spec, settings = self.spec, self.settings
        (workdir / spec.notebook).write_bytes(nb_bytes)
        for rel, data in spec.folder("files/match/").items():
            target = workdir / "match" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        job: Job = {
            "workdir": str(workdir), "cells": cells, "timeout": settings.timeout,
            "probe_timeout": settings.probe_timeout, "probes": spec.probes(inputs),
            "probe_files": spec.probe_files(), "probe_module": spec.probe_module,
            "package": f"_sgdkit_probe_{os.urandom(6).hex()}",
            "public": self.public,
            "memory": settings.memory, "cpu": int(self.hard_limit()) + 60, "disk": settings.disk,
            "processes": settings.processes, "namespaces": self.mode.prefix is not None,
            "newroot": str(workdir) + ".root", "expected": spec.library_files(),
        }
        os.mkdir(job["newroot"])  # a mount point inside the sandbox's own namespace only
        run = Run(cells=dict(cells))
        if self.mode.root:  # the kernel's uid: this submission's alone
            with self.lock:
                job["uid"] = isolation.new_uid(self.uids)
                self.uids.add(job["uid"])
        batch_cgroups = self.mode.cgroups
        cgroups = batch_cgroups.submission(settings.memory, settings.processes) if batch_cgroups else {}
        job["cgroups"] = sorted(set(cgroups.values()))  # the sandbox joins them first thing
        try:
            with self.lock:  # so stop() either sees this child or prevents it
                if self.stopping:
                    run.events.append({"event": "sandbox_error", "error": "grading was interrupted"})
                    return run
                proc = self.server.spawn()
                self.children.add(proc)
            try:
                out, err = proc.communicate(job_lines(job), timeout=self.hard_limit())
            except subprocess.TimeoutExpired:
                run.killed = True
                kill_tree(proc)
                out, err = proc.communicate()
            finally:
                kill_tree(proc)
                proc.close()
                with self.lock:
                    self.children.discard(proc)
        finally:  # nothing of this submission outlives it: processes, cgroups, IPC objects, temp files
            if batch_cgroups and cgroups:
                run.oom_kills = batch_cgroups.oom_kills(cgroups)
                batch_cgroups.remove(cgroups)
            if "uid" in job:
                isolation.sweep(job["uid"])
        run.stderr = err.decode("utf-8", "replace")[-2000:]
        run.returncode = proc.returncode
        for line in out.decode("utf-8", "replace").splitlines():
            try:
                run.events.append(json.loads(line))
            except ValueError:
                pass  # a line cut short by a kill
        return run

    def hard_limit(self) -> float:
        """The last resort: the sandbox keeps its own deadlines well within this."""
        s = self.settings
        return s.timeout + 2 * len(self.spec.questions) * (s.probe_timeout + 6) + 180


def _sandbox_env() -> dict[str, str]:
    """The sandbox gets no inherited secrets; it builds the kernel's environment itself."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {k: v for k, v in os.environ.items() if k in keep}


def kill_tree(proc: Sandbox) -> None:
    """SIGKILL a sandbox, its process group and every descendant; wait until the fork server reaped it."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in descendants:
        try:
            child.kill()
        except psutil.Error:
            pass
    proc.wait(timeout=30)


