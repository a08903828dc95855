"""What does grading cost over running the student's own code, where does one submission's time go, and does it
scale across cores?

Figures, each the median of --repeat runs (issue 16's targets in brackets):
  floor      the stage-02 solution's code cells run as plain Python in one process, no kernel;
  bare       that notebook executed top to bottom with nbclient, as a student runs it;
  otter run  `otter run -a <zip>` on it: the peer an instructor would otherwise use;
  grade 1    `grade()` on that one notebook (the CLI's start excluded);
  per sub    20 stage-02 solutions with 1 worker, divided by 20 [<= 2 x floor, <= 0.5 x bare];
  2 workers  the same 20 with 2 workers [>= 1.9 x faster than 1];
  blank      20 blank stage-01 notebooks with 2 workers, divided by 20 [<= 0.4 s];
  gradescope run_autograder on a simulated /autograder, setup excluded, stage 01 and 02 solutions [<= 3 s];
  cli        `sgdkit --help` and `sgdkit grade --help`, the CLI's own start.
Then the phases of one submission (blank stage 01, stage-02 solution), from the sandbox's stamped events.
Appends a dated section to benchmarks/RESULTS.md. Run on an otherwise idle machine: `make bench`.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from sgdkit import ASSIGNMENTS, ZIPS, isolation
from sgdkit.build import build
from sgdkit.grade import grade
from sgdkit.submissions import code_cells

RESULTS = Path(__file__).with_name("RESULTS.md")
SGDKIT = Path(sys.executable).with_name("sgdkit")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(fn, repeat: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeat))


def as_submitted(notebook: Path, stage: str, scratch: str) -> Path:
    """A copy of `notebook` under the stage's notebook name (otter's init cell reads its own notebook)."""
    name = next((ASSIGNMENTS / stage).glob("*.ipynb")).name
    copy = Path(tempfile.mkdtemp(dir=scratch)) / name
    shutil.copy(notebook, copy)
    return copy


def student_cells(notebook: Path) -> list[str]:
    """The code cells a student wrote or ran, without otter's (the locked init cell, grader.check/export)."""
    cells = [source for _, source in code_cells(nbformat.read(notebook, as_version=4))]
    return [c for c in cells if "otter" not in c and not c.lstrip().startswith("grader.")]


def floor_run(notebook: Path, stage: str, scratch: str) -> float:
    """Seconds the notebook's own code takes as plain Python, timed inside a fresh interpreter."""
    work = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(ASSIGNMENTS / stage / "match", work / "match")
    program = ("import time\ncells = __import__('json').loads(__import__('sys').stdin.read())\nt = time.perf_counter()\n"
               "g = {}\nfor c in cells:\n    exec(compile(c, 'cell', 'exec'), g)\n"
               "print(time.perf_counter() - t)\n")
    done = subprocess.run([sys.executable, "-c", program], input=json.dumps(student_cells(notebook)), cwd=work,
                          capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"}, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def bare_run(notebook: Path, stage: str, scratch: str) -> None:
    """Execute the notebook with nbclient next to its match/ copy (no grading at all)."""
    work = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(ASSIGNMENTS / stage / "match", work / "match")
    shutil.copy(notebook, work / as_submitted(notebook, stage, scratch).name)  # otter's init cell reads it
    nb = nbformat.read(notebook, as_version=4)
    kept = {source for _, source in code_cells(nb)}  # the export cell is skipped by otter and by us
    nb.cells = [c for c in nb.cells if c.cell_type != "code" or c.source in kept]
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()


def otter_run(notebook: Path, stage: str, scratch: str) -> None:
    out = tempfile.mkdtemp(dir=scratch)
    subprocess.run([Path(sys.executable).with_name("otter"), "run", "-a", ZIPS / f"{stage}.zip", "-o", out,
                    as_submitted(notebook, stage, scratch)], capture_output=True, check=True)


def grade_run(paths: list[Path], stage: str, workers: int, scratch: str) -> None:
    grade(paths, stage, Path(tempfile.mkdtemp(dir=scratch)), workers=workers, force=True, progress=False)


def copies(notebook: Path, n: int, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        shutil.copy(notebook, folder / f"student{i}_{notebook.name}")
    return folder


def gradescope_root(stage: str, scratch: str) -> Path:
    """/autograder as Gradescope lays it out (tests/test_gradescope.py has the full simulation), with this
    checkout's venv in place of the one setup.sh would install: setup is not timed."""
    root = Path(tempfile.mkdtemp(dir=scratch))
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir()
    with zipfile.ZipFile(ZIPS / f"{stage}.zip") as zf:
        for info in zf.infolist():
            zf.extract(info, root / "source")
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777 or 0o644)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "sgdkit-venv").symlink_to(Path(sys.prefix))
    env = {**os.environ, "SGDKIT_AUTOGRADER_ROOT": str(root)}
    subprocess.run(["bash", root / "source" / "setup.sh", "lockdown"], cwd=root, env=env, check=True,
                   capture_output=True)
    return root


def gradescope_run(root: Path, notebook: Path) -> None:
    for folder in ("submission", "results"):
        shutil.rmtree(root / folder, ignore_errors=True)
        (root / folder).mkdir()
    shutil.copy(notebook, root / "submission" / notebook.name)
    subprocess.run([root / "run_autograder"], cwd=root, capture_output=True, check=True,
                   env={**os.environ, "SGDKIT_AUTOGRADER_ROOT": str(root)})


def phases(notebook: Path, stage: str) -> list[tuple[str, float]]:
    """[(phase, seconds)] of one submission: the parent's steps and the sandbox's stamped events."""
    from sgdkit.batch import Batch, Settings
    from sgdkit.scoring import judge_run
    from sgdkit.stage import load_stage
    from sgdkit.submissions import parse_notebook, read_notebook

    found = []
    start = time.time()
    spec = load_stage(stage)
    found.append(("stage load", time.time() - start))
    settings = Settings(timeout=120, probe_timeout=60, memory=4 << 30, seed=1)
    start = time.time()
    with Batch(spec, settings) as batch:
        found.append(("batch start (fork server, cgroups)", time.time() - start))
        for warm in (True, False):  # the first submission of a batch also waits for otter's import
            start = time.time()
            nb_bytes = read_notebook(notebook)
            nb, _ = parse_notebook(nb_bytes)
            inputs = {q: spec.module.make_inputs(q, 1) for q in spec.questions}
            read = time.time()
            run = batch.run_sandbox(Path(tempfile.mkdtemp(dir=batch.root)), nb_bytes, code_cells(nb), inputs)
            ran = time.time()
            judge_run(spec, run, inputs, batch.reference, [], settings.memory)
            if warm:
                continue
            found.append(("read, validate, draw inputs", read - start))
            last, names = read, {"isolation": "sandbox start and jail", "kernel": "kernel start"}
            stamped = [e for e in run.events if "at" in e]
            for event, following in zip(stamped, stamped[1:] + [None]):
                kind = event["event"]
                what = {"cell": f"cell {event.get('index')}", "public": f"public tests {event.get('question')}",
                        "probe": f"probe {event.get('question')}", "probe_failed": f"probe {event.get('question')}",
                        "fingerprints": "tamper check"}.get(kind, names.get(kind))
                if kind == "cell":  # a cell's event marks its start: its time runs to the next event
                    found.append((what, (following["at"] if following else ran) - event["at"]))
                    last = following["at"] if following else ran
                elif what:
                    found.append((what, event["at"] - last))
                    last = event["at"]
                else:
                    last = event["at"]
            found.append(("sandbox end, sweep", ran - last))
            found.append(("judge and score", time.time() - ran))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--label", default="", help="what this tree is, for the heading (e.g. a commit)")
    args = parser.parse_args()
    repeat = args.repeat
    build(log=lambda line: None)
    solution = {s: ZIPS / f"{s}-solution.ipynb" for s in ("01-losses", "02-descent")}
    blank = next((ASSIGNMENTS / "01-losses").glob("*.ipynb"))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o755)  # kernels of their own uids pass through it
        inbox = Path(scratch) / "inbox"
        one = copies(solution["02-descent"], 1, inbox / "one")
        twenty = copies(solution["02-descent"], 20, inbox / "twenty")
        blanks = copies(blank, 20, inbox / "blanks")
        stage = "02-descent"
        floor = statistics.median(floor_run(solution[stage], stage, scratch) for _ in range(repeat))
        bare = median(lambda: bare_run(solution[stage], stage, scratch), repeat)
        otter = median(lambda: otter_run(solution[stage], stage, scratch), repeat)
        single = median(lambda: grade_run([one], stage, 1, scratch), repeat)
        w1 = median(lambda: grade_run([twenty], stage, 1, scratch), repeat) / 20
        w2 = median(lambda: grade_run([twenty], stage, 2, scratch), repeat) / 20
        empty = median(lambda: grade_run([blanks], "01-losses", 2, scratch), repeat) / 20
        rows += [
            ("stage-02 solution as plain Python (the floor)", floor, ""),
            ("bare nbclient run of it", bare, f"{bare / floor:.1f} x floor"),
            ("`otter run -a` of it (hidden tests in its kernel)", otter, f"{otter / floor:.1f} x floor"),
            ("`grade()` of that one notebook", single, f"{single / floor:.1f} x floor"),
            ("per submission, 20 of them, 1 worker", w1,
             f"{w1 / floor:.2f} x floor [<= 2], {w1 / bare:.2f} x bare [<= 0.5]"),
            ("per submission, 20 of them, 2 workers", w2, f"{w1 / w2:.2f} x faster than 1 worker [>= 1.9]"),
            ("per blank stage-01 submission, 20 of them, 2 workers", empty, "[<= 0.4 s]"),
        ]
        for stage in solution:
            root = gradescope_root(stage, scratch)
            seconds = median(lambda: gradescope_run(root, solution[stage]), repeat)
            rows.append((f"Gradescope run_autograder, {stage} solution (setup excluded)", seconds, "[<= 3 s]"))
        for words in (["--help"], ["grade", "--help"]):
            cli = median(lambda: subprocess.run([SGDKIT, *words], capture_output=True, check=True), repeat)
            rows.append((f"`sgdkit {' '.join(words)}` (the CLI's start)", cli, ""))
        profiles = {name: phases(path, stage) for name, path, stage in
                    (("blank stage-01", blank, "01-losses"), ("stage-02 solution", solution["02-descent"],
                                                               "02-descent"))}
    text = [f"## {date.today()} {args.label} - {os.cpu_count()} cores, median of {repeat}, "
            f"isolation: {isolation.detect().name}", "", "| what | seconds | ratio [target] |", "| --- | --- | --- |"]
    text += [f"| {what} | {seconds:.2f} | {ratio} |" for what, seconds, ratio in rows]
    for name, steps in profiles.items():
        text += ["", f"One {name} submission, phase by phase (one run, after a warm-up submission):", "",
                 "| phase | seconds |", "| --- | --- |"]
        text += [f"| {what} | {seconds:.3f} |" for what, seconds in steps]
        text.append(f"| total | {sum(s for _, s in steps):.3f} |")
    out = "\n".join(text) + "\n"
    print(out)
    with RESULTS.open("a") as f:
        f.write("\n" + out)


if __name__ == "__main__":
    main()
