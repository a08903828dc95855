"""`sgdkit gradescope`: grade the one submission of a Gradescope or `otter grade` run with `sgdkit grade`'s pipeline.

Gradescope unzips the autograder zip (autograder/zips/<stage>.zip) into
/autograder/source and runs its setup.sh once; `otter grade` builds a Docker
image that copies in what its Dockerfile names (package.py) and runs the same
setup.sh (autograder/gradescope/: Python from apt, the kit from its wheel, the
source folder locked to root, a random base seed). Then, for every submission,
both run run_autograder as root, which runs this (the student's kernel runs as a
fresh unprivileged uid, isolation.py):

1. lock  -- the source, submission and results folders become root's alone, so
            student code can neither read the hidden material nor write results;
2. find  -- the notebook in /autograder/submission (or the zip grader.export wrote);
3. grade -- grade.grade, exactly as `sgdkit grade` runs it: a sandboxed run,
            probes, judging outside the student's kernel; the seed is
            grade.seed_for(the base seed from setup, the notebook's hash);
4. write -- in /autograder/results, after the student's processes are gone:
            results.json in Gradescope's format (a test per part, hidden parts
            scored, public tests as 0-point practice tests, the feedback Markdown
            as the top-level output), and results.pkl, otter's GradingResults
            (otter_results.py), which `otter grade` loads on the instructor's machine.

SGDKIT_AUTOGRADER_ROOT moves /autograder (the kit's tests lay one out in a temp folder).
"""
import argparse
import json
import os
import secrets
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any

from . import otter_results
from .outputs import write_atomic
from .results import Result, TestResult, status_text

ROOT_VARIABLE = "SGDKIT_AUTOGRADER_ROOT"
# Seconds for the notebook: `sgdkit grade`'s default for a solution that runs in
# a few seconds, as these do. The zip holds no measured run time (its bytes
# depend only on the sources), so the default is set here.
TIMEOUT = 60.0
# How long students may see each test: the kit shows hints at once (as feedback/*.md does).
VISIBILITY = "visible"
IGNORED = {"__MACOSX", ".ipynb_checkpoints"}
STAGE_SUMMARY = "files/sgdkit_stage.json"  # in the zip (package.py writes it), so in source/
FAILED = "The autograder failed on this submission; your instructor can see why. Please tell them."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sgdkit gradescope` (run_autograder calls it without any)."""
    parser.add_argument("--root", type=Path, default=None,
                        help=f"the autograder folder (default: ${ROOT_VARIABLE}, else /autograder)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT,
                        help=f"seconds to run the notebook (default {TIMEOUT:g})")


def main(args: argparse.Namespace) -> int:
    """Write both results whatever happens: a failed run shows as the autograder's fault, and exits 0."""
    root = args.root or autograder_root()
    start = time.monotonic()
    try:
        result, output = grade_submission(root, args.timeout)
        results: dict[str, object] = to_gradescope(result, output)
        pickled = otter_results.dumps(otter_results.from_result(result))
    except Exception:  # a grader bug: the student gets a plain message, the instructor the traceback (stdout)
        traceback.print_exc(file=sys.stdout)
        results = {"score": 0.0, "output": FAILED, "output_format": "text", "tests": []}
        pickled = otter_results.dumps(otter_results.failed(
            "crashed: the autograder failed on this submission; its log has the traceback"))
    results["execution_time"] = round(time.monotonic() - start)
    write_results(root / "results", results, pickled)
    print(f"sgdkit gradescope: {results['score']:g} points in {results['execution_time']} s")
    return 0


def autograder_root() -> Path:
    """/autograder, or where SGDKIT_AUTOGRADER_ROOT says (the kit's tests)."""
    return Path(os.environ.get(ROOT_VARIABLE) or "/autograder")


def grade_submission(root: Path, timeout: float) -> tuple[Result, str]:
    """Lock the folders down, find the notebook, grade it: its result and the Markdown the student sees."""
    from .grade import GIB, grade

    lock_down(root)
    with tempfile.TemporaryDirectory(prefix="sgdkit-gradescope-") as temp_name:
        temp = Path(temp_name)
        meta = stage_zips(root / "source", temp / "zips")
        path, problem = find_submission(root / "submission", meta["notebook"])
        if path is None:  # graded as an empty file: every question is listed, at 0
            path = temp / "inbox" / "no-notebook.ipynb"
            path.parent.mkdir()
            path.touch()
        memory = container_memory()
        result = grade([path], meta["stage"], temp / "graded", zips=temp / "zips", workers=1, timeout=timeout,
                       memory=min(memory, 4 * GIB) if memory else None, seed=base_seed(root / "source"),
                       progress=False)[0]
        if problem:
            result["status"], result["detail"] = "invalid", problem
        feedback = "".join(p.read_text(encoding="utf-8") for p in (temp / "graded" / "feedback").glob("*.md"))
    print(f"sgdkit gradescope: {result['file']}: {status_text(result)} (seed {result.get('seed')})")
    return result, f"**Not graded:** {problem}." if problem else feedback


def lock_down(root: Path) -> None:
    """Make the hidden material, the submission (and its metadata) and the results root's alone."""
    if os.geteuid() != 0:
        return  # not Gradescope (a TA trying it out): nothing to protect from
    for folder in ("source", "submission", "results"):
        if (root / folder).is_dir():
            os.chmod(root / folder, 0o700)
    if (root / "submission_metadata.json").is_file():  # names, e-mails and earlier scores
        os.chmod(root / "submission_metadata.json", 0o600)


def stage_zips(source: Path, folder: Path) -> dict[str, Any]:
    """Lay out what grade.load_stage reads (<stage>.zip, <stage>.json) from the unzipped autograder: its summary."""
    meta = json.loads((source / STAGE_SUMMARY).read_text())
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / f"{meta['stage']}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if path.is_file() and rel.parts[0] in ("files", "tests"):
                zf.write(path, rel.as_posix())
    (folder / f"{meta['stage']}.json").write_text(json.dumps(meta))
    return meta


def find_submission(folder: Path, notebook: str) -> tuple[Path | None, str | None]:
    """(the file to grade, None), or (None, why there is none): a notebook, else the zip grader.export wrote."""
    # The reasons name no submitted file: they go into Markdown, and file names are the student's text.
    files = sorted(p for p in folder.rglob("*") if _submitted(p, folder)) if folder.is_dir() else []
    for kind in (".ipynb", ".zip"):
        found = [p for p in files if p.suffix.lower() == kind]
        named = [p for p in found if p.name == notebook]
        if len(found) == 1 or len(named) == 1:
            return (found if len(found) == 1 else named)[0], None
        if found:
            return None, f"{len(found)} {kind} files were submitted; submit only {notebook}"
    return None, f"no notebook was submitted; submit {notebook} or the zip its last cell wrote"


def _submitted(path: Path, folder: Path) -> bool:
    """A file the student uploaded: not a link (a zip can carry one to root's files), no editor or OS clutter."""
    inside = path.relative_to(folder).parts
    return (path.is_file() and not path.name.startswith(".") and not IGNORED & set(inside)
            and not any(folder.joinpath(*inside[:i + 1]).is_symlink() for i in range(len(inside))))


def base_seed(source: Path) -> int:
    """The base of every submission's seed, drawn once by setup.sh; a fresh one if setup did not run."""
    try:
        return int((source / "seed").read_text())
    except (OSError, ValueError):
        print("sgdkit gradescope: warning: no base seed from setup.sh; this run draws its own")
        return secrets.randbits(62)


def container_memory() -> int | None:
    """Three quarters of the container's memory limit (cgroup v2, else v1), or None where there is none."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 50:  # v1 says "no limit" with a huge number
            return int(text) * 3 // 4
    return None


def to_gradescope(result: Result, output: str) -> dict[str, object]:
    """results.json: one test per part, numbered question.part, as Gradescope's specification documents it."""
    tests: list[dict[str, object]] = []
    for q_number, (question, outcome) in enumerate(result["questions"].items(), 1):
        for t_number, test in enumerate(outcome["tests"], 1):
            tests.append(gradescope_test(question, test, f"{q_number}.{t_number}"))
    return {
        "score": result["total"],
        "output": output,
        "output_format": "md",  # the feedback Markdown, whose every student text is escaped
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": VISIBILITY,
        "stdout_visibility": "hidden",  # the grader's log: seed and status, for the instructor
        "extra_data": {"status": result["status"], "detail": result["detail"], "file": result["file"]},
        "tests": tests,
    }


def gradescope_test(question: str, test: TestResult, number: str) -> dict[str, object]:
    """A hidden part (its points; its hint if failed), or a public test (0 points, tagged practice)."""
    hidden = test["hidden"]
    entry: dict[str, object] = {
        "name": f"{question}: {test['name']}" + ("" if hidden else " (practice)"),
        "number": number,
        "score": (test["points"] if test["passed"] else 0) if hidden else 0,
        "max_score": test["points"] if hidden else 0,
        "status": "passed" if test["passed"] else "failed",
        "visibility": VISIBILITY,
        "tags": ["hidden" if hidden else "practice"],
    }
    if not test["passed"]:
        entry["output"] = (test.get("hint") if hidden else test.get("message")) or ""
    return entry


def write_results(folder: Path, results: dict[str, object], pickled: bytes) -> None:
    """results.json and results.pkl, each written atomically so that no reader sees half of one."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "results.json", json.dumps(results, indent=1, ensure_ascii=False))
    # A rename replaces whatever was there (`otter grade` copies in an empty file first), even a link.
    write_atomic(folder / "results.pkl", pickled)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m sgdkit.gradescope", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
