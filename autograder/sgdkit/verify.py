"""Grade the built solution and blank notebooks as `sgdkit grade` does: full marks for one, zero for the other.

Every problem names the master's test cell and line (or the master notebook),
so a TA knows what to fix.
"""
import shutil
import threading

from .assign import BuildJob
from .package import write_autograder
from .results import Result, status_text
from .sources import BuildError

# One `sgdkit grade` at a time in this process: each loads its stage's checks as the
# module `sgdkit_checks`, which the zip's test cases import by that name.
_GRADING = threading.Lock()


def verify(job: BuildJob) -> None:
    """Graded as `sgdkit grade` grades, the solution passes every test, public and hidden, and the blank scores 0."""
    solution, blank = trusted_results(job)
    job.solution_scores, job.blank_scores = _scores(solution), _scores(blank)
    job.solution_seconds = solution["seconds"]
    problems = solution_problems(job, solution) + blank_problems(job, blank)
    if problems:
        raise BuildError("the solution must pass every test and the blank notebook score 0:\n  "
                         + "\n  ".join(problems))


def trusted_results(job: BuildJob) -> tuple[Result, Result]:
    """`sgdkit grade`'s results for the solution and the blank student notebook, from this build's zip."""
    from .grade import grade

    zips, inbox = job.work / "zips", job.work / "inbox"
    assert job.view is not None  # write_student, a step before verify, sets it
    write_autograder(job, zips)
    inbox.mkdir()
    shutil.copyfile(job.solution, inbox / "solution.ipynb")
    shutil.copyfile(job.view / job.stage.notebook, inbox / "blank.ipynb")
    for attempt in range(2):
        with _GRADING:
            results = {r["file"]: r for r in grade([inbox], job.stage.name, job.work / "graded", zips=zips,
                                                   workers=2, progress=False, force=attempt > 0)}
        # The solution must run cleanly; when it does not, that is mostly a kernel that failed to
        # start under load, not the notebook: grade once more. (The blank may end in a cell error.)
        if results["solution.ipynb"]["status"] == "ok":
            break
    return results["solution.ipynb"], results["blank.ipynb"]


def _scores(result: Result) -> dict[str, tuple[float, float]]:
    """{question: (points, possible)} of one graded notebook, from its hidden tests."""
    return {question: (sum(t["points"] for t in got["tests"] if t["hidden"] and t["passed"]),
                       sum(t["points"] for t in got["tests"] if t["hidden"]))
            for question, got in result["questions"].items()}


def _test_where(job: BuildJob, question: str, part: str) -> str:
    """Where the master defines a question's test, or at least the master notebook."""
    master = job.masters[job.stage.name]
    found = next((q.tests.get(part) for q in master.questions if q.name == question), None)
    return found.where if found else f"solutions/{job.stage.name}/{job.stage.notebook}"


def solution_problems(job: BuildJob, result: Result) -> list[str]:
    """Why the solution does not pass every test cleanly: one line per failing test, naming its cell."""
    master = job.masters[job.stage.name]
    where = f"solutions/{job.stage.name}/{job.stage.notebook}"
    problems = [] if result["status"] == "ok" else [
        f"{where}: the solution does not run cleanly ({status_text(result)}; notes: {'; '.join(result['notes'])})"]
    for question in (q for q in master.questions if not q.manual):
        got = result["questions"].get(question.name)
        if got is None:
            problems.append(f"{where}: question {question.name} is not graded")
            continue
        possible = job.solution_scores[question.name][1]
        if possible != question.points:
            problems.append(f"{where}: question {question.name} is worth {possible} in the autograder "
                            f"but {question.points} by its test cells")
        for test in (t for t in got["tests"] if not t["passed"]):
            why = test.get("message") or got["details"].get(test["name"]) or test.get("hint", "")
            kind = "hidden test" if test["hidden"] else "public test"
            problems.append(f"{_test_where(job, question.name, test['name'])}: {kind} {test['name']} of "
                            f"{question.name} fails on the solution: {_one_line(why)}")
    return problems


def blank_problems(job: BuildJob, result: Result) -> list[str]:
    """Hidden tests that give points to the blank student notebook."""
    return [f"{_test_where(job, question, test['name'])}: hidden test {test['name']} of {question} passes on the "
            f"blank student notebook; every hidden part must fail without an answer"
            for question, got in result["questions"].items()
            for test in got["tests"] if test["hidden"] and test["passed"] and test["points"]]


def _one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
