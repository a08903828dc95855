"""How much does grading cost over simply running the notebook, and does it scale across cores?

Measures, for stage 02-descent (the slowest autograded notebook):
  bare     executing the solution notebook top to bottom with nbclient, as a student would;
  grade 1  `sgdkit grade` on that one notebook (sandbox, probes, judging, scoring, files);
  batch    grading 8 submissions with 1 worker and with 2 workers.
Each figure is the median of --repeat runs. Appends a dated table to
benchmarks/RESULTS.md. Targets (issue 8): grade 1 <= 1.2 x bare; 2 workers >= 1.8 x
faster than 1. Run on an otherwise idle machine: `make bench`.
"""
import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from sgdkit import ASSIGNMENTS, ZIPS, isolation
from sgdkit.build import build
from sgdkit.grade import grade
from sgdkit.submissions import code_cells

STAGE = "02-descent"
RESULTS = Path(__file__).with_name("RESULTS.md")


def bare_run(solution, scratch):
    """Seconds to execute the notebook with nbclient, next to its match/ copy (no grading at all)."""
    work = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(ASSIGNMENTS / STAGE / "match", work / "match")
    shutil.copy(solution, work / "descent.ipynb")  # otter's init cell reads its own notebook
    nb = nbformat.read(solution, as_version=4)
    kept = {source for _, source in code_cells(nb)}  # the export cell is skipped by otter and by us
    nb.cells = [c for c in nb.cells if c.cell_type != "code" or c.source in kept]
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    return time.perf_counter() - start


def grade_run(paths, workers, scratch):
    """Seconds for `sgdkit grade` on `paths` with `workers`, from nothing graded."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    start = time.perf_counter()
    grade(paths, STAGE, out, workers=workers, force=True, progress=False)
    return time.perf_counter() - start


def median(fn, repeat):
    return statistics.median(fn() for _ in range(repeat))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    build(log=lambda line: None)
    solution = ZIPS / f"{STAGE}-solution.ipynb"
    with tempfile.TemporaryDirectory() as scratch:
        inbox = Path(scratch) / "inbox"
        inbox.mkdir()
        one = inbox / "one" / "descent.ipynb"
        one.parent.mkdir()
        shutil.copy(solution, one)
        eight = inbox / "eight"
        eight.mkdir()
        for i in range(8):
            shutil.copy(solution, eight / f"student{i}_descent.ipynb")
        bare = median(lambda: bare_run(solution, scratch), args.repeat)
        single = median(lambda: grade_run([one], 1, scratch), args.repeat)
        w1 = median(lambda: grade_run([eight], 1, scratch), args.repeat)
        w2 = median(lambda: grade_run([eight], 2, scratch), args.repeat)
    rows = [
        ("bare nbclient run of the solution", f"{bare:.2f} s", ""),
        ("grading that one notebook", f"{single:.2f} s", f"{single / bare:.2f} x bare (target <= 1.2)"),
        ("grading 8 notebooks, 1 worker", f"{w1:.2f} s", ""),
        ("grading 8 notebooks, 2 workers", f"{w2:.2f} s", f"{w1 / w2:.2f} x faster (target >= 1.8)"),
    ]
    table = [f"## {date.today()} — {STAGE}, {os.cpu_count()} cores, median of {args.repeat}, "
             f"isolation: {isolation.detect().name}", "",
             "| what | time | ratio |", "| --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(table) + "\n"
    print(text)
    with RESULTS.open("a") as f:
        f.write("\n" + text)


if __name__ == "__main__":
    main()
