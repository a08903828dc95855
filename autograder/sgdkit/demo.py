"""`sgdkit demo`: the kit's whole job on the bundled sample class, start to end.

Build (skipped when up to date), grade every stage's sample class in
examples/sample-class/, print one table per stage, check every row against the
stage's EXPECTED.csv, and write the report. Exit 1 if any row differs.
"""
import csv
import json
import sys
import time
from pathlib import Path

from . import ROOT, ZIPS

SAMPLE = ROOT / "examples" / "sample-class"


def demo_timeout(stage, zips=ZIPS):
    """A per-notebook time limit for the demo: short, so the hanging sample costs little,
    but twice what the solution took (build measured it) plus slack for a loaded machine."""
    try:
        seconds = json.loads((Path(zips) / f"{stage}.json").read_text())["solution_seconds"]
    except (OSError, ValueError, KeyError):
        seconds = None
    return 60.0 if seconds is None else max(30.0, 2 * seconds + 10)


def read_expected(folder):
    """EXPECTED.csv rows by file name."""
    with open(Path(folder) / "EXPECTED.csv", newline="", encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


def outcome(points, possible):
    """'full', 'partial' or 'zero' for a question's points."""
    if points <= 0:
        return "zero"
    return "full" if points >= possible else "partial"


def keyword(status):
    """The status keyword: 'ok', 'timeout', 'invalid', ... (the text before any colon)."""
    return status.split(":", 1)[0].strip()


def mismatches(expected, results):
    """{file: what differs} between EXPECTED.csv rows and grading results."""
    found = {}
    graded = {r["file"]: r for r in results}
    for file, want in expected.items():
        got = graded.get(file)
        if got is None:
            found[file] = "not graded"
            continue
        wrong = []
        for question, outcome_wanted in want.items():
            if question in ("file", "status", "about"):
                continue
            q = got["questions"].get(question)
            have = "missing" if q is None else outcome(q["points"], q["possible"])
            if have != outcome_wanted:
                wrong.append(f"{question} {have}, expected {outcome_wanted}")
        if keyword(got["status"]) != want["status"]:
            wrong.append(f"status {keyword(got['status'])}, expected {want['status']}")
        if wrong:
            found[file] = "; ".join(wrong)
    for file in graded.keys() - expected.keys():
        found[file] = "not in EXPECTED.csv"
    return found


def table(results, questions, problems, status_width=44):
    """The per-question table of one stage, as lines of text."""
    possible = {q: max((r["questions"][q]["possible"] for r in results if q in r["questions"]), default=0)
                for q in questions}
    headers = ["file"] + [f"{q}/{possible[q]:g}" for q in questions] + ["total", "status", "check"]
    rows = []
    for r in results:
        status = r["status"] if len(r["status"]) <= status_width else r["status"][:status_width - 3] + "..."
        rows.append([r["file"]] + [f"{r['questions'].get(q, {}).get('points', 0):g}" for q in questions]
                    + [f"{r['total']:g}/{r['possible']:g}", status,
                       f"MISMATCH: {problems[r['file']]}" if r["file"] in problems else "as expected"])
    widths = [max(len(row[i]) for row in [headers] + rows) for i in range(len(headers) - 1)]

    def line(row):
        # file and status flush left, numbers flush right, the check column as is
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:-2], widths[1:-1])]
        return "  ".join(cells + [row[-2].ljust(widths[-1]), row[-1]])

    return [line(headers), "  ".join("-" * w for w in widths) + "  " + "-" * 11] + [line(row) for row in rows]


def _say(text):
    print(text, flush=True)  # a log read through a pipe shows progress as it happens


def demo(out="demo-out", sample=SAMPLE, workers=None, timeout=None, log=_say):
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


def add_arguments(parser):
    parser.add_argument("--out", default="demo-out", help="where grades and report.html go (default: demo-out)")
    parser.add_argument("--workers", type=int, default=None, help="submissions graded at once (default: cores)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per notebook (default: twice the solution's run time plus 10, at least 30)")
    parser.add_argument("--sample", type=Path, default=SAMPLE,
                        help="folder of stage folders, each with submissions and EXPECTED.csv "
                             "(default: examples/sample-class)")


def main(args):
    from .build import BuildError

    try:
        problems = demo(args.out, args.sample, args.workers, args.timeout)
    except BuildError as exc:
        print(f"sgdkit demo: the build failed: {exc}", file=sys.stderr)
        return 1
    return 1 if problems else 0
