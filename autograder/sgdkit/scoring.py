"""Score one sandbox run: its events -> status, detail and each question's points, with otter's own test runner.

No student code runs here, and nothing here trusts what the run reported: probe
data is judged by the stage's trusted judge, and otter's ExceptionTestFile
scores the zip's hidden test cases against those verdicts. A run that stopped
early, or tampered with anything, scores nothing.
"""
import importlib
import importlib.util
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .results import QuestionResult, Status, TestResult
from .stage import Stage

MAX_PRINTED = 1 << 20  # printed output is only counted (never kept); past this the status says so
# Worst first: the status of a submission is its worst problem; its notes keep all.
SEVERITY: list[Status] = ["tampered", "crashed", "memory", "timeout", "output-limit", "cell-error"]


@dataclass
class Run:
    """What one sandbox reported, and what the grader saw of it from outside."""

    events: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""
    returncode: int | None = None
    killed: bool = False  # stopped at the grader's hard time limit
    changed: list[str] = field(default_factory=list)  # the tamper check's findings on the workdir's files
    cells: dict[int, str] = field(default_factory=dict)  # code cell number -> source, for messages
    oom_kills: int = 0  # processes the memory cgroup's OOM killer killed (the total memory cap)


_SCORING = threading.Lock()  # `judged` verdicts are per process: one question is scored at a time
_OTTER = threading.Lock()


@contextmanager
def otter_folder() -> Iterator[None]:
    """`otter` as otter's folder and nothing else, while this lasts, unless the real package is loaded.

    `import otter` first runs otter/__init__.py, which imports otter's whole API
    (nbconvert and pandas among it): half a second or more of every grading
    process, for nothing grading uses. Grading needs only otter.test_files, to
    score (below) and to pickle results (otter_results.py, whose pickler
    imports the top package of every class it names). After this, a later
    `import otter` still gets the real package, which finds otter.test_files
    already loaded.
    """
    with _OTTER:
        if "otter" in sys.modules:
            yield
            return
        spec = importlib.util.find_spec("otter")
        assert spec is not None, "otter-grader is not installed"
        sys.modules["otter"] = importlib.util.module_from_spec(spec)  # its __path__; __init__ not run
        try:
            yield
        finally:
            del sys.modules["otter"]


def otter_test_files() -> ModuleType:
    """otter.test_files, all of otter that grading runs, loaded without otter's top level (otter_folder)."""
    with otter_folder():
        return importlib.import_module("otter.test_files")


def score_question(spec: Stage, question: str, data_by_question: dict[str, Any], inputs: Any,
                   missing_reason: str | None = None, public: Any = None) -> QuestionResult:
    """Judge one question's probe data and score it with otter on the zip's hidden cases.

    `missing_reason` (no data, tampered, not run) fails every hidden part with that reason;
    `public` is what the kernel said of the public tests: feedback only, never points.
    """
    ExceptionTestFile = otter_test_files().ExceptionTestFile

    module = spec.module
    parts = list(module.QUESTIONS[question])
    if missing_reason is None:
        try:
            verdicts = module.judge(question, inputs, data_by_question[question])
            verdicts = {part: verdicts.get(part, "the judge gave no verdict") for part in parts}
        except Exception as exc:  # probe data is student-influenced: malformed data is a failure
            verdicts = {part: f"probe data could not be judged ({type(exc).__name__}: {exc})"[:500]
                        for part in parts}
    else:
        verdicts = {part: missing_reason for part in parts}

    test_file = ExceptionTestFile.from_string(spec.test_source(question), path=f"tests/{question}.py")
    public_cases = [tc for tc in test_file.test_cases if not tc.hidden]
    test_file.test_cases = [tc for tc in test_file.test_cases if tc.hidden]  # points live here only
    with _SCORING, spec.checks.judged({question: verdicts}):  # `check` answers from these, in this process only
        sys.modules["sgdkit_checks"] = spec.checks  # the test cases import it by name; another stage may be loaded
        test_file.run({})

    tests: list[TestResult] = []
    for tcr in test_file.test_case_results:
        part = _part(tcr.test_case)
        entry: TestResult = {"name": part, "hidden": True, "points": tcr.test_case.points,
                             "passed": bool(tcr.passed)}
        if not tcr.passed:
            entry["hint"] = module.QUESTIONS[question].get(part, "")
        tests.append(entry)
    # Public results come from the student's kernel: feedback only, so just keep their shape sane.
    ran = {r.get("name"): r for r in (public if isinstance(public, list) else []) if isinstance(r, dict)}
    for tc in public_cases:
        got = ran.get(tc.body.test_func.__name__)
        entry = {"name": _part(tc), "hidden": False, "points": tc.points or 0,
                 "passed": bool(got and got.get("passed") is True)}
        if not entry["passed"]:
            entry["message"] = (_clean_message(str(got.get("message", ""))) if got else
                                "not run (the notebook stopped before it, or the public tests ran out of time)")
        tests.append(entry)
    return {"points": test_file.score, "possible": test_file.possible, "tests": tests,
            "details": {part: why for part, why in verdicts.items() if why is not None}}


def _part(test_case: Any) -> str:
    name = test_case.body.test_func.__name__
    return name[len("test_"):] if name.startswith("test_") else name


def _clean_message(message: str) -> str:
    """otter's failure text without its '❌ Test case failed' banner."""
    return re.sub(r"^\W*Test case failed\s*", "", message or "").strip()[:2000]


@dataclass
class Reported:
    """The sandbox's events, sorted by kind."""

    notebook: dict[str, Any] | None = None  # how the top-to-bottom run ended
    last_cell: int | None = None
    cell_errors: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # question -> probe data
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)  # question -> probe_failed event
    public: dict[str, list] = field(default_factory=dict)  # question -> public test results
    fingerprints: dict[str, Any] | None = None
    printed: int = 0
    notes: list[str] = field(default_factory=list)
    sandbox_error: str | None = None
    done: bool = False  # the sandbox reached its end

    @classmethod
    def from_events(cls, events: list[dict[str, Any]]) -> "Reported":
        got = cls()
        for event in events:
            kind = event.get("event")
            if kind == "cell":
                got.last_cell = event.get("index")
            elif kind == "cell_error":
                got.cell_errors.append(event)
            elif kind == "notebook":
                got.notebook = event
            elif kind == "probe":
                got.data[event["question"]] = event.get("data")
            elif kind == "probe_failed":
                got.failed[event["question"]] = event
            elif kind == "public":
                got.public[event["question"]] = event.get("results") or []
            elif kind == "fingerprints":
                got.fingerprints = event.get("values") or {}
            elif kind == "output":
                got.printed = event.get("bytes", 0)
            elif kind == "isolation":
                got.notes += event.get("notes") or []
            elif kind == "sandbox_error":
                got.sandbox_error = event.get("error")
            elif kind == "done":
                got.done = True
        return got

    def unfinished(self, questions: list[str]) -> str | None:
        """Why a run whose notebook finished has no complete record after it, else None.

        Every step after the notebook guards points: a probe its question, the
        tamper check every question. So when one did not report (the kernel or
        the sandbox died, or was killed, between steps), nothing counts.
        """
        if not self.notebook or self.notebook.get("state") != "done":
            return None  # the notebook itself did not finish: problems() says why, and nothing was probed
        silent = [q for q in questions if q not in self.data and q not in self.failed]
        if silent:
            return f"the run stopped before {silent[0]} was probed"
        if self.fingerprints is None:
            return "the run stopped before the tamper check reported"
        if not self.done:
            return "the grader's sandbox stopped before its end"
        return None


def problems(run: Run, got: Reported, reference: dict[str, Any], memory: int | None) -> dict[Status, str]:
    """{status keyword: explanation} of everything that went wrong, plus what was tampered with."""
    found: dict[Status, str] = {}

    def cell(index: int) -> str:
        first = next((line.strip() for line in run.cells.get(index, "").splitlines() if line.strip()), "")
        return f"code cell {index} ({first[:40]}{'...' if len(first) > 40 else ''})" if first else f"code cell {index}"

    nb = got.notebook or {}
    # The cgroup's OOM killer killed some of its processes: they went past the total memory cap together.
    oom = run.oom_kills > 0
    if got.sandbox_error:
        kind: Status = "memory" if oom or _oom(got.sandbox_error) else "crashed"
        found[kind] = f"the grader's sandbox failed ({got.sandbox_error})"
    elif run.killed:
        where = f" in {cell(got.last_cell)}" if got.last_cell else ""
        found["timeout"] = f"the grader stopped the run{where} at its hard time limit; nothing could be graded"
    elif not nb:
        found["crashed"] = (f"the grader's sandbox ended unexpectedly (exit code {run.returncode}): "
                            f"{run.stderr.strip()[-300:] or 'no message'}")
    elif nb["state"] == "timeout":
        found["timeout"] = f"{cell(nb['index'])} was still running after {nb['limit']:g} s" + (
            "; it was stopped, later cells were not run" if nb.get("recovered")
            else " and did not stop when interrupted; nothing could be graded")
    elif nb["state"] == "died":
        found["memory" if oom or _oom(nb.get("stderr", "")) else "crashed"] = \
            f"the kernel {nb.get('how')} in {cell(nb['index'])}; nothing could be graded"
    memory_errors = [e for e in got.cell_errors if e.get("ename") == "MemoryError"]
    if memory_errors:
        found.setdefault("memory", f"{cell(memory_errors[0]['index'])} ran out of memory (limit {_size(memory)})")
    if oom:
        found.setdefault("memory", f"its processes together went past the memory cap ({_size(memory)}); "
                                   f"{run.oom_kills} of them were killed")
    for question, event in got.failed.items():
        if event.get("status") == "timeout":
            found.setdefault("timeout", f"probing {question} took longer than {event['limit']:g} s; it scores 0")
        elif event.get("status") == "died":
            found.setdefault("memory" if oom else "crashed", f"{event['reason']} while {question} was probed")
    if got.printed > MAX_PRINTED:
        found["output-limit"] = f"the notebook printed {_size(got.printed)}; everything past 1 MB was dropped"
    if got.cell_errors:
        first, more = got.cell_errors[0], len(got.cell_errors) - 1
        found["cell-error"] = (f"{cell(first['index'])} raised {first['ename']}: {first.get('evalue', '')}"[:300]
                               + (f" (and {more} more cell(s))" if more else ""))
    # Tampering: a watched function replaced in the kernel (of the modules it had loaded, which it reports),
    # or the working folder's files rewritten.
    tampered = [f"{key.replace(':', '.')} was replaced" for key, want in reference.items()
                if got.fingerprints is not None and want[0] != "missing" and key in got.fingerprints
                and got.fingerprints[key] != want]
    tampered += run.changed
    if tampered:
        found["tampered"] = "; ".join(tampered[:5]) + (f" (and {len(tampered) - 5} more)" if len(tampered) > 5 else "")
    return found


def judge_run(spec: Stage, run: Run, inputs: dict[str, Any], reference: dict[str, Any], notes: list[str],
              memory: int | None = None) -> dict[str, Any]:
    """Status, detail, notes, per-question scores and totals (a Result's fields) from what the sandbox reported."""
    got = Reported.from_events(run.events)
    found = problems(run, got, reference, memory)
    unfinished = got.unfinished(spec.questions)
    if unfinished:
        found.setdefault("crashed", f"{unfinished}, so no question can be scored")
    notes = list(notes) + got.notes + [f"{kind}: {text}" for kind, text in found.items()]

    questions = {}
    for q in spec.questions:
        if "tampered" in found:
            reason = "tampered: " + found["tampered"]
        elif unfinished:
            reason = f"not scored: {unfinished}"
        elif q in got.data:
            reason = None
        elif q in got.failed:
            reason = f"no probe data: {got.failed[q]['reason']}"
        else:
            reason = "no probe data: the notebook's kernel did not survive to be probed"
        questions[q] = score_question(spec, q, got.data, inputs.get(q), reason, got.public.get(q))
    status: Status = next((kind for kind in SEVERITY if kind in found), "ok")
    total = sum(v["points"] for v in questions.values())
    possible = sum(v["possible"] for v in questions.values())
    return {"status": status, "detail": found.get(status, ""), "notes": notes, "questions": questions, "total": total, "possible": possible,
            "percent_correct": round(100 * total / possible, 2) if possible else 0.0}


def _oom(text: str | None) -> bool:
    """Does this error text say the memory cap was hit?"""
    signs = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "can't start new thread")
    return any(sign in (text or "") for sign in signs)


def _size(n: int | None) -> str:
    if n is None:
        return "the memory cap"
    for unit, scale in (("GiB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
