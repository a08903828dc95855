"""`sgdkit export`: merge the stages' grades into one gradebook CSV, one row per student.

Each stage is given as `--stage STAGE DIR PATTERN`: the folder `sgdkit grade`
wrote and a file-name pattern that names the student, such as
`{student}_losses.ipynb`; `*` matches anything (an LMS's submission ids).
A roster puts every student in the gradebook, submitted or not.
"""
import argparse
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from .outputs import read_csv, write_csv
from .results import load_graded

log = logging.getLogger(__name__)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regex for a file-name pattern with exactly one {student} and any number of *."""
    if pattern.count("{student}") != 1:
        raise ValueError(f"pattern {pattern!r} must contain {{student}} exactly once")
    pieces: list[str] = []
    for piece in re.split(r"(\{student\}|\*)", pattern):
        if piece == "{student}":
            pieces.append(r"(?P<student>.+?)")
        elif piece == "*":
            pieces.append(r".*?")
        else:
            pieces.append(re.escape(piece))
    return re.compile("".join(pieces))


def read_roster(path: Path | str) -> tuple[list[str], list[dict[str, str | None]]]:
    """(column names, rows) of a roster: a CSV with a `student` column (or the first
    column is the student), or a text file with one student per line."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        # read_csv undoes a leading ' (this kit's, or a spreadsheet's), so a gradebook.csv can serve as the roster.
        columns, rows = read_csv(path, encoding="utf-8-sig")  # -sig: Excel starts its CSVs with a BOM
        rows = [row for row in rows if any((v or "").strip() for v in row.values())]
        if not columns:
            raise ValueError(f"roster {path} is empty")
        key = "student" if "student" in columns else columns[0]
        # The join key goes first and is called `student` in the gradebook.
        columns = ["student"] + [c for c in columns if c != key]
        rows = [{"student": (row[key] or "").strip(), **{c: row[c] for c in columns[1:]}} for row in rows]
        return columns, rows
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return ["student"], [{"student": s} for s in lines if s and not s.startswith("#")]


def export(stages: Iterable[tuple[str, Path | str, str]], out: Path | str, roster: Path | str | None = None,
           warn: Callable[[str], object] = print) -> int:
    """Write the gradebook to `out`; `stages` is a list of (stage, graded folder, pattern).

    Returns the number of problems found (submissions no pattern matched, a
    student with two submissions for one stage, students not on the roster);
    each is passed to `warn`.
    """
    columns, students = read_roster(roster) if roster else (["student"], [])
    by_name = {row["student"]: row for row in students}
    problems = 0
    for stage, folder, pattern in stages:
        regex = pattern_regex(pattern)
        graded = load_graded(folder)
        columns += [f"{stage}_total", f"{stage}_percent"]
        seen: dict[str, dict[str, str]] = {}
        for row in graded.rows:
            match = regex.fullmatch(row["file"])
            if match is None:
                warn(f"{stage}: {row['file']!r} does not match {pattern!r}; not in the gradebook")
                problems += 1
                continue
            student = match["student"]
            if student in seen:
                # Keep the better submission; the instructor decides from the warning.
                keep = max(seen[student], row, key=lambda r: float(r["total"] or 0))
                warn(f"{stage}: {student} has two submissions, {seen[student]['file']!r} and "
                     f"{row['file']!r}; keeping {keep['file']!r}")
                problems += 1
                row = keep
            seen[student] = row
            if student not in by_name:
                if roster:
                    warn(f"{stage}: {student} ({row['file']!r}) is not on the roster; added at the end")
                    problems += 1
                by_name[student] = {"student": student}
                students.append(by_name[student])
            by_name[student][f"{stage}_total"] = row["total"]
            by_name[student][f"{stage}_percent"] = row["percent_correct"]
    if not roster:
        students.sort(key=lambda row: row["student"] or "")  # (no roster: every name is a str from a pattern)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Student names and roster columns come from outside: write_csv neutralises formula-like cells.
    write_csv(out, columns, [[row.get(c, "") for c in columns] for row in students])
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", nargs=3, action="append", required=True,
                        metavar=("STAGE", "DIR", "PATTERN"),
                        help="a stage's name, the folder `sgdkit grade --out` wrote, and the "
                             "file-name pattern, e.g. '{student}_losses.ipynb' (* matches anything); repeat per stage")
    parser.add_argument("--roster", help="every student, so that non-submitters appear: a CSV with a "
                                         "`student` column (else the first column) or a text file, one per line")
    parser.add_argument("--out", default="gradebook.csv", help="the CSV to write (default: gradebook.csv)")


def main(args: argparse.Namespace) -> int:
    try:
        problems = export(args.stage, args.out, args.roster, log.warning)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    print(f"wrote {args.out}" + (f" with {problems} warning(s) above" if problems else ""))
    return 1 if problems else 0
