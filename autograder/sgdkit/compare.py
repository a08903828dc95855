"""Regrade preview: which students' scores would change, from what to what, and why.

`sgdkit grade --compare OLD/grades.csv` loads the old grades before grading
(the new grading may overwrite that very folder), then calls `preview`, which
writes DIR/changes.csv and prints one line per student whose points changed.
"""
import sys
from dataclasses import dataclass, field
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from .outputs import visible, write_csv
from .results import Graded, Result, TestResult, csv_float, load_graded

COLUMNS = ["file", "old_total", "new_total", "old_percent", "new_percent",
           "old_status", "new_status", "questions", "why"]


@dataclass
class Change:
    """One student whose grade differs between two gradings."""

    file: str
    old_total: float | None
    new_total: float | None
    old_percent: float | None
    new_percent: float | None
    old_status: str
    new_status: str
    # question -> (old points, new points), changed ones only
    questions: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)


def load(where: Graded | Path | str) -> Graded:
    """A grading to compare against: a Graded kept as is, or a graded folder / grades.csv read now."""
    return where if isinstance(where, Graded) else load_graded(where)


def _test_changes(question: str, old_result: Result | None, new_result: Result | None) -> list[str]:
    """Why `question` scored differently: the tests that flipped or changed worth."""
    def tests(result: Result | None) -> dict[str, TestResult]:
        outcome = result.get("questions", {}).get(question) if result else None
        return {t["name"]: t for t in outcome.get("tests", [])} if outcome else {}

    old, new = tests(old_result), tests(new_result)
    reasons = []
    for name, test in new.items():
        before = old.get(name)
        if before is None:
            reasons.append(f"new test {name} {'passed' if test.get('passed') else 'failed'}")
            continue
        if bool(before.get("passed")) != bool(test.get("passed")):
            reasons.append(f"{name} now {'passes' if test.get('passed') else 'fails'}")
        if before.get("points") != test.get("points"):
            reasons.append(f"{name} worth {before.get('points', 0):g} -> {test.get('points', 0):g}")
    reasons += [f"test {name} removed" for name in old if name not in new]
    return reasons


def compare(old: Graded | Path | str, new: Graded | Path | str) -> list[Change]:
    """Every student whose points, total or percent differ between two gradings.

    `old` and `new` are graded folders, grades.csv paths or Graded objects.
    Students only in `new` count as changed (new submission); students only in
    `old` were not regraded and are left out.
    """
    old, new = load(old), load(new)
    before = {row["file"]: row for row in old.rows}
    changes: list[Change] = []
    for row in new.rows:
        name = row["file"]
        prior = before.get(name)
        if prior is None:
            changes.append(Change(name, None, csv_float(row["total"]), None, csv_float(row["percent_correct"]),
                                  "", row["status"], why=["new submission"]))
            continue
        questions: dict[str, tuple[float | None, float | None]] = {}
        why: list[str] = []
        for question in dict.fromkeys(old.questions + new.questions):
            a, b = csv_float(prior.get(question)), csv_float(row.get(question))
            if a != b:
                questions[question] = (a, b)
                detail = _test_changes(question, old.results.get(name), new.results.get(name))
                why.append(f"{question} {_or_dash(a)} -> {_or_dash(b)}" + (f" ({'; '.join(detail)})" if detail else ""))
        totals = csv_float(prior["total"]), csv_float(row["total"])
        percents = csv_float(prior["percent_correct"]), csv_float(row["percent_correct"])
        if not questions and totals[0] == totals[1] and percents[0] == percents[1]:
            continue
        if prior["status"] != row["status"]:
            why.append(f"status {prior['status']} -> {row['status']}")
        if not questions and percents[0] != percents[1]:
            worth = [r.get("possible") if r else None for r in (old.results.get(name), new.results.get(name))]
            out_of = f" {_or_dash(worth[0])} -> {_or_dash(worth[1])}" if None not in worth else ""
            why.append(f"same points, but points possible changed{out_of}: "
                       f"percent {_or_dash(percents[0])} -> {_or_dash(percents[1])}")
        changes.append(Change(name, *totals, *percents, prior["status"], row["status"], questions, why))
    return changes


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def write_changes(changes: Iterable[Change], path: Path | str) -> None:
    """Write the changes as CSV (columns COLUMNS), atomically, formula-like cells neutralised."""
    write_csv(Path(path), COLUMNS, [
        [c.file, _cell(c.old_total), _cell(c.new_total), _cell(c.old_percent), _cell(c.new_percent),
         c.old_status, c.new_status,
         "; ".join(f"{q} {_or_dash(a)}->{_or_dash(b)}" for q, (a, b) in c.questions.items()), "; ".join(c.why)]
        for c in changes])


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def print_changes(changes: list[Change], out: TextIO | None = None) -> None:
    """One line per changed student: file, old total -> new total, why."""
    out = out or sys.stdout
    if not changes:
        print("Regrade preview: no student's score would change.", file=out)
        return
    print(f"Regrade preview: {len(changes)} student(s) whose score would change:", file=out)
    width = max(len(visible(c.file)) for c in changes)
    for c in changes:
        # visible(): a status quoting a kernel's message may hold terminal escape sequences.
        print(f"  {visible(c.file):<{width}}  {_or_dash(c.old_total):>6} -> {_or_dash(c.new_total):<6}  "
              f"{visible('; '.join(c.why))}", file=out)


def preview(old: Graded | Path | str, out_dir: Path | str, out: TextIO | None = None) -> list[Change]:
    """Compare `old` with the grading in out_dir, write out_dir/changes.csv and print the changes."""
    out = out or sys.stdout
    changes = compare(old, out_dir)
    path = Path(out_dir) / "changes.csv"
    write_changes(changes, path)
    print_changes(changes, out)
    print(f"Written to {path}: review it before you publish the new grades.", file=out)
    return changes
