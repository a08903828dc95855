"""The per-submission result: its typed record, how a score is classified, and reading graded folders back.

`sgdkit grade` writes one `Result` per submission to DIR/results/<name>.json
and one row of DIR/grades.csv; `compare`, `export`, `report` and `demo` read
them back through `load_graded` and never parse a status text: the keyword is
`result["status"]`, the explanation `result["detail"]`.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

from .outputs import flat_name, read_csv

# Every status keyword, best first; a submission's status is its worst problem (grade.py, scoring.py).
Status = Literal["ok", "cell-error", "output-limit", "timeout", "memory", "crashed", "tampered",
                 "invalid", "wrong-stage"]
# Statuses of submissions that never ran (rejected before running): their tests "failed" without being tried.
NOT_RUN = ("invalid", "wrong-stage")
Outcome = Literal["full", "partial", "zero"]


class TestResult(TypedDict):
    """One otter test case of a question, as the student's feedback shows it."""

    name: str  # the test function's name without "test_": a hidden part, or a public test
    hidden: bool
    points: float
    passed: bool
    hint: NotRequired[str]  # a failed hidden part: the kit's hint for it
    message: NotRequired[str]  # a failed public test: its message, from the student's kernel


class QuestionResult(TypedDict):
    points: float
    possible: float
    tests: list[TestResult]
    details: dict[str, str]  # hidden part -> why it failed (for the instructor, never in feedback)


class Result(TypedDict):
    """Everything known about one graded submission: DIR/results/<name>.json."""

    file: str  # the name in grades.csv
    sha256: str  # of the submitted file's bytes ("" if it could not be read)
    stage: str
    status: Status
    detail: str  # why the status is not ok ("" when it is)
    seed: int | None  # the probes' inputs were drawn from it (None if the notebook never ran)
    seconds: float
    questions: dict[str, QuestionResult]
    total: float
    possible: float
    percent_correct: float
    notes: list[str]  # everything that went wrong, and how the sandbox was isolated
    grader: NotRequired[str]  # GRADER_VERSION:zip:seed base; a rerun keeps a result with the same file and grader


def new_result(file: str, digest: str, stage: str) -> Result:
    """A result with no questions scored yet."""
    return {"file": file, "sha256": digest, "stage": stage, "status": "ok", "detail": "", "seed": None,
            "seconds": 0.0, "questions": {}, "total": 0.0, "possible": 0.0, "percent_correct": 0.0, "notes": []}


def status_text(result: Result) -> str:
    """The status as grades.csv and the feedback show it: "ok", or "keyword: why"."""
    return f"{result['status']}: {result['detail']}" if result["detail"] else result["status"]


def outcome(points: float, possible: float | None) -> Outcome:
    """Full, partial or zero points on a question (full when what it is worth is unknown but points were earned)."""
    if points <= 0:
        return "zero"
    return "full" if possible is None or points >= possible else "partial"


def csv_float(text: str | None) -> float | None:
    """A grades.csv number cell as a float; None for an empty cell."""
    return None if text in (None, "") else float(text)


def read_result(out: Path, file: str) -> Result | None:
    """The stored results/<name>.json of a grades.csv name, or None if there is none (or it is unreadable)."""
    try:
        return json.loads((out / "results" / (flat_name(file) + ".json")).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass
class Graded:
    """One graded folder: grades.csv rows (as text) and results by file name."""

    folder: Path
    stage: str
    questions: list[str]
    rows: list[dict[str, str]]
    results: dict[str, Result] = field(default_factory=dict)

    def possible(self, question: str) -> float | None:
        """Points `question` is worth, from any result that records it (None if none does)."""
        worth = [r["questions"][question]["possible"] for r in self.results.values()
                 if question in r.get("questions", {})]
        return max(worth) if worth else None

    def total_possible(self) -> float | None:
        """Points the whole stage is worth (None if no result records it)."""
        worth = [r["possible"] for r in self.results.values() if r.get("possible")]
        return max(worth) if worth else None

    def status(self, row: dict[str, str]) -> tuple[str, str]:
        """(keyword, detail) of a grades.csv row, from its stored result; the CSV text if it has none."""
        result = self.results.get(row["file"])
        return (result["status"], result["detail"]) if result else (row["status"], "")


def load_graded(where: Path | str) -> Graded:
    """Read a graded folder (or its grades.csv) into a Graded."""
    where = Path(where)
    folder = where.parent if where.suffix == ".csv" else where
    csv_path = where if where.suffix == ".csv" else where / "grades.csv"
    if not csv_path.is_file():
        raise ValueError(f"{csv_path} does not exist: is {folder} an `sgdkit grade --out` folder?")
    # read_csv undoes the CSV-injection guard, so a row's file is the name its results JSON holds.
    columns, rows = read_csv(csv_path)
    fixed = {"file", "total", "percent_correct", "status"}
    if not fixed <= set(columns):
        raise ValueError(f"{csv_path} has columns {columns}; expected file, questions, total, percent_correct, status")
    results = {}
    # Keyed by the "file" field, so how grade.py names the JSON files does not matter.
    for path in sorted((folder / "results").glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        results[result["file"]] = result
    stages = {r.get("stage") for r in results.values()} - {None}
    stage = stages.pop() if len(stages) == 1 else folder.name
    return Graded(folder, stage, [c for c in columns if c not in fixed], rows, results)
