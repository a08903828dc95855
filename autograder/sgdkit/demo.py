"""`sgdkit demo`: the kit's whole job on the bundled sample class, start to end.

Build (skipped when up to date), grade every stage's sample class in
examples/sample-class/, print one table per stage, check every row against the
stage's EXPECTED.csv, and write the report. Exit 1 if any row differs.
"""
import argparse
import csv
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from . import ROOT, ZIPS
from .results import Result, outcome, status_text
from .stage import read_summary

log = logging.getLogger(__name__)

SAMPLE = ROOT / "examples" / "sample-class"


def demo_timeout(stage: str, zips: Path | str = ZIPS) -> float:
    """A per-notebook time limit for the demo: short, so the hanging sample costs little,
    but twice what the solution took (build measured it) plus slack for a loaded machine."""
    seconds = read_summary(stage, zips).get("solution_seconds")
    return 60.0 if seconds is None else max(30.0, 2 * seconds + 10)


def read_expected(folder: Path | str) -> dict[str, dict[str, str]]:
    """EXPECTED.csv rows by file name."""
    with open(Path(folder) / "EXPECTED.csv", newline="", encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


def mismatches(expected: dict[str, dict[str, str]], results: Iterable[Result]) -> dict[str, str]:
    """{file: what differs} between EXPECTED.csv rows and grading results."""
    found: dict[str, str] = {}
    graded = {r["file"]: r for r in results}
    for file, want in expected.items():
        got = graded.get(file)
        if got is None:
            found[file] = "not graded"
            continue
        wrong: list[str] = []
        for question, outcome_wanted in want.items():
            if question in ("file", "status", "about"):
                continue
            q = got["questions"].get(question)
            have = "missing" if q is None else outcome(q["points"], q["possible"])
            if have != outcome_wanted:
                wrong.append(f"{question} {have}, expected {outcome_wanted}")
        if got["status"] != want["status"]:
            wrong.append(f"status {got['status']}, expected {want['status']}")
        if wrong:
            found[file] = "; ".join(wrong)
    for file in graded.keys() - expected.keys():
        found[file] = "not in EXPECTED.csv"
    return found


def table(results: Sequence[Result], questions: list[str], problems: dict[str, str],
          status_width: int = 44) -> list[str]:
    """The per-question table of one stage, as lines of text."""
    possible = {q: max((r["questions"][q]["possible"] for r in results if q in r["questions"]), default=0)
                for q in questions}
    headers = ["file"] + [f"{q}/{possible[q]:g}" for q in questions] + ["total", "status", "check"]
    rows: list[list[str]] = []
    for r in results:
        text = status_text(r)
        status = text if len(text) <= status_width else text[:status_width - 3] + "..."
        points = [r["questions"][q]["points"] if q in r["questions"] else 0 for q in questions]
        rows.append([r["file"]] + [f"{p:g}" for p in points]
                    + [f"{r['total']:g}/{r['possible']:g}", status,
                       f"MISMATCH: {problems[r['file']]}" if r["file"] in problems else "as expected"])
    widths = [max(len(row[i]) for row in [headers] + rows) for i in range(len(headers) - 1)]

    def line(row: list[str]) -> str:
        # file and status flush left, numbers flush right, the check column as is
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:-2], widths[1:-1])]
        return "  ".join(cells + [row[-2].ljust(widths[-1]), row[-1]])

    return [line(headers), "  ".join("-" * w for w in widths) + "  " + "-" * 11] + [line(row) for row in rows]


def _say(text: str) -> None:
    print(text, flush=True)  # a log read through a pipe shows progress as it happens


def demo(out: Path | str = "demo-out", sample: Path | str = SAMPLE, workers: int | None = None,
         timeout: float | None = None, log: Callable[[str], None] = _say) -> int:
    """Run the demo; return the number of rows that differ from EXPECTED.csv."""
    from .build import build
    from .grade import grade
    from .report import write_report

    start = time.monotonic()
    out = Path(out)
    log("== sgdkit demo: build, grade the sample class, report ==")
    log("-- build (skipped for stages that are up to date)")
    build(log=lambda text: log("   " + text))

    folders = sorted(p for p in Path(sample).iterdir() if (p / "EXPECTED.csv").is_file())
    total_problems, graded_dirs, count = 0, [], 0
    for folder in folders:
        stage = folder.name
        expected = read_expected(folder)
        limit = timeout or demo_timeout(stage)
        log(f"-- grade {stage}: {len(expected)} submissions from {folder}, "
            f"time limit {limit:g} s per notebook (one of them hangs on purpose)")
        begun = time.monotonic()
        results = grade([folder], stage, out / stage, workers=workers, timeout=limit, force=True)
        questions = [q for q in next(iter(expected.values())) if q not in ("file", "status", "about")]
        problems = mismatches(expected, results)
        log(f"   graded in {time.monotonic() - begun:.0f} s; "
            + (f"{len(problems)} row(s) differ from EXPECTED.csv" if problems else "every row as EXPECTED.csv says"))
        log("")
        for text in table(results, questions, problems):
            log("   " + text)
        log("")
        total_problems += len(problems)
        graded_dirs.append(out / stage)
        count += len(results)

    report = write_report(graded_dirs, out / "report.html", "sgdkit demo: the sample class")
    log(f"== done in {time.monotonic() - start:.0f} s: {count} submissions in {len(folders)} stages, "
        + (f"{total_problems} differ from EXPECTED.csv" if total_problems else "all as expected"))
    for d in graded_dirs:
        log(f"   {d}/grades.csv   (per-student feedback in {d}/feedback/)")
    log(f"   report: {report}   (open it in a browser)")
    return total_problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", help="where grades and report.html go (default: demo-out)")
    parser.add_argument("--workers", type=int, default=None, help="submissions graded at once (default: cores)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per notebook (default: twice the solution's run time plus 10, at least 30)")
    parser.add_argument("--sample", type=Path, default=SAMPLE,
                        help="folder of stage folders, each with submissions and EXPECTED.csv "
                             "(default: examples/sample-class)")


def main(args: argparse.Namespace) -> int:
    from .build import BuildError

    try:
        problems = demo(args.out, args.sample, args.workers, args.timeout)
    except BuildError as exc:
        log.error("the build failed: %s", exc)
        return 1
    return 1 if problems else 0
