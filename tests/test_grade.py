"""Tests of `sgdkit grade`: real otter zips, real kernels, hostile and broken submissions.

Stage 01 is built once into a temp folder. One batch grades the solution under
three file names, the blank notebook and duplicate names; one batch (slow)
grades every kind of broken and hostile submission at once with 2 workers.
"""
import copy
import csv
import json
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path

import psutil
import pytest

from sgdkit import SOLUTIONS
from sgdkit.build import build
from sgdkit.batch import seed_for
from sgdkit.grade import grade, parse_size
from sgdkit.submissions import Rejected, code_cells, find_submissions, parse_notebook

STAGE = "01-losses"
QUESTIONS = ["list2d_mean", "list2d_abs", "matrix_mean", "matrix_abs", "losses"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Stage 01 built into a temp folder: (zips folder, solution notebook, blank student notebook)."""
    out = tmp_path_factory.mktemp("built")
    build(SOLUTIONS, out / "assignments", out / "zips", stages=[STAGE], verify_scores=False, log=lambda line: None)
    # Another stage's summary, so a notebook that names descent.ipynb is recognised as 02-descent.
    (out / "zips" / "02-descent.json").write_text(json.dumps(
        {"stage": "02-descent", "notebook": "descent.ipynb", "questions": []}))
    return out / "zips", out / "zips" / f"{STAGE}-solution.ipynb", out / "assignments" / STAGE / "losses.ipynb"


def grade_quietly(paths, out, zips, **options):
    return {r["file"]: r for r in grade(paths, STAGE, out, zips=zips, progress=False, **options)}


def graded_without_leftovers(paths, out, zips, temp, **options):
    """grade() plus what it left behind: ({file: result}, sandboxes or kernels running, files left in `temp`)."""
    saved, tempfile.tempdir = tempfile.tempdir, str(temp)  # grade's temp folders go to `temp` only
    try:
        results = {r["file"]: r for r in grade(paths, STAGE, out, zips=zips, progress=False, **options)}
    finally:
        tempfile.tempdir = saved
    processes = [p for p in psutil.Process().children(recursive=True)
                 if any("sandbox.py" in part or "ipykernel" in part for part in _cmdline(p))]
    return results, processes, sorted(Path(temp).iterdir())


def _cmdline(process):
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- without kernels


def test_broken_files_are_rejected_with_a_reason():
    """Are empty, truncated and non-JSON files 'invalid' with a reason, and a real notebook accepted?"""
    for data, reason in [(b"", "empty"), (b'{"cells": [', "broken JSON"), (b"%PDF-1.4 \x00\xff", "not text"),
                         (b"[1, 2]", "without cells")]:
        with pytest.raises(Rejected, match=reason) as caught:
            parse_notebook(data)
        assert caught.value.kind == "invalid"
    nb, notes = parse_notebook(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode())
    assert nb.cells == [] and notes == []


def test_duplicate_names_are_told_apart(tmp_path):
    """Do same-named files in different folders get distinct names, and checkpoints get skipped?"""
    for folder in ("a", "b", "b/.ipynb_checkpoints"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "losses.ipynb").write_text("{}")
    (tmp_path / "a" / "jdoe_losses.ipynb").write_text("{}")
    names = [s.file for s in find_submissions([tmp_path])]
    assert names == ["a/losses.ipynb", "b/losses.ipynb", "jdoe_losses.ipynb"]


def test_export_cell_and_ignored_cells_are_not_run():
    """Are otter's export cell and otter_ignore cells left out, and the rest numbered as in the notebook?"""
    nb, _ = parse_notebook(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# hi", "id": "a"},
        {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [], "execution_count": None, "id": "b"},
        {"cell_type": "code", "metadata": {"tags": ["otter_ignore"]}, "source": "y = 2", "outputs": [],
         "execution_count": None, "id": "c"},
        {"cell_type": "code", "metadata": {}, "source": "# save first\ngrader.export(pdf=False)", "outputs": [],
         "execution_count": None, "id": "d"},
    ]}).encode())
    assert code_cells(nb) == [(1, "x = 1")]  # numbered among code cells, as the student counts them


def test_sizes_and_seeds():
    """Are --memory sizes parsed, and are seeds reproducible but different per notebook and per base?"""
    assert parse_size("4G") == 4 << 30 and parse_size("512M") == 512 << 20 and parse_size("1000") == 1000
    with pytest.raises(ValueError, match="--memory"):
        parse_size("lots")
    assert seed_for(0, "ab") == seed_for(0, "ab") != seed_for(0, "ac") != seed_for(1, "ac")


# ---------------------------------------------------------------- real kernels


@pytest.fixture(scope="module")
def class_batch(built, tmp_path_factory):
    """The solution under three names (and twice as losses.ipynb in two folders) and the blank notebook."""
    zips, solution, blank = built
    inbox = tmp_path_factory.mktemp("inbox")
    for name in ("losses (2).ipynb", "jdoe_losses.ipynb", "alice/losses.ipynb", "bob/losses.ipynb"):
        (inbox / name).parent.mkdir(exist_ok=True)
        (inbox / name).write_bytes(solution.read_bytes())
    (inbox / "blank.ipynb").write_bytes(blank.read_bytes())
    out = tmp_path_factory.mktemp("graded")
    results, *leftovers = graded_without_leftovers([inbox], out, zips, tmp_path_factory.mktemp("temp"), workers=2)
    return inbox, out, results, leftovers


def test_solution_gets_full_marks_under_any_name(class_batch):
    """Does the solution get every point and status ok, whatever its file name?"""
    results = class_batch[2]
    for name in ("losses (2).ipynb", "jdoe_losses.ipynb", "alice/losses.ipynb", "bob/losses.ipynb"):
        result = results[name]
        assert result["status"] == "ok", result["notes"]
        assert result["total"] == result["possible"] == 24 and result["percent_correct"] == 100
        assert all(t["passed"] for q in result["questions"].values() for t in q["tests"])
    # Same notebook, same seed: renamed copies grade identically, test for test.
    strip = lambda r: {k: v for k, v in r.items() if k not in ("file", "seconds")}
    assert strip(results["losses (2).ipynb"]) == strip(results["jdoe_losses.ipynb"])


def test_blank_notebook_scores_zero(class_batch):
    """Does the blank student notebook score 0 on every question, with an ok status?"""
    result = class_batch[2]["blank.ipynb"]
    assert result["status"] == "ok" and result["total"] == 0 and result["possible"] == 24
    assert all(q["points"] == 0 for q in result["questions"].values())


def test_grades_csv_has_one_row_per_submission(class_batch):
    """Does grades.csv have file, the questions in notebook order, total, percent_correct, status?"""
    _, out, results, _ = class_batch
    rows = read_csv(out / "grades.csv")
    assert list(rows[0]) == ["file", *QUESTIONS, "total", "percent_correct", "status"]
    assert sorted(r["file"] for r in rows) == sorted(results)
    row = next(r for r in rows if r["file"] == "jdoe_losses.ipynb")
    assert (row["list2d_mean"], row["losses"], row["total"], row["percent_correct"], row["status"]) == \
        ("4", "6", "24", "100", "ok")


def test_results_and_feedback_files(class_batch):
    """Is there a results JSON and a feedback page per submission, hints but never hidden test code?"""
    _, out, results, _ = class_batch
    result = json.loads((out / "results" / "blank.ipynb.json").read_text())
    assert set(result) >= {"file", "sha256", "stage", "status", "detail", "seed", "seconds", "questions", "total",
                           "possible", "percent_correct"}
    tests = result["questions"]["matrix_abs"]["tests"]
    assert {t["hidden"] for t in tests} == {True, False} and not any(t["passed"] for t in tests)
    assert all(t["hint"] for t in tests if t["hidden"]) and all(t["message"] for t in tests if not t["hidden"])
    assert result["questions"]["matrix_abs"]["details"]  # what went wrong, for the instructor
    text = (out / "feedback" / "blank.ipynb.md").read_text()
    assert "## matrix_abs: 0 / 5" in text and "Hidden check" in text and "Public test" in text
    assert "sgdkit_checks" not in text and "check(" not in text
    assert (out / "results" / "alice%2Flosses.ipynb.json").is_file()
    assert len(list((out / "feedback").glob("*.md"))) == len(results)


def test_rerun_skips_graded_and_force_regrades(class_batch, built, tmp_path):
    """Does a rerun reuse stored results (same sha256 and grader), and --force grade again?"""
    inbox, graded, results, _ = class_batch
    out = tmp_path / "graded"
    shutil.copytree(graded, out)
    stored = out / "results" / "blank.ipynb.json"
    written = stored.stat().st_mtime_ns
    assert grade_quietly([inbox], out, built[0], workers=2) == results  # nothing regraded
    assert stored.stat().st_mtime_ns == written
    forced = grade_quietly([inbox / "blank.ipynb"], out, built[0], force=True)
    assert forced["blank.ipynb"]["total"] == 0 and stored.stat().st_mtime_ns != written
    assert [r["file"] for r in read_csv(out / "grades.csv")] == ["blank.ipynb"]  # this run's PATHs only


def test_class_batch_leaves_nothing_behind(class_batch):
    """After grading, is no sandbox or kernel running and no grading temp folder left?"""
    processes, folders = class_batch[3]
    assert processes == [] and folders == []


# ---------------------------------------------------------------- hostile and broken submissions


def notebook_with(base, *sources, at=None):
    """A copy of notebook `base` with code cells added (at the end, or before cell index `at`)."""
    nb = copy.deepcopy(base)
    cells = [{"cell_type": "code", "execution_count": None, "id": f"hostile{i}", "metadata": {},
              "outputs": [], "source": source} for i, source in enumerate(sources)]
    at = len(nb["cells"]) if at is None else at
    nb["cells"][at:at] = cells
    return json.dumps(nb)


class Marker:
    """Unpickling this creates the marker file: proof that a grader unpickled .OTTER_LOG."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def write_hostile(folder, solution, blank, marker):
    """Every broken and hostile submission of issue 4, as files in `folder`."""
    sol, empty = json.loads(solution.read_text()), json.loads(blank.read_text())
    files = {
        "empty.ipynb": "",
        "truncated.ipynb": solution.read_text()[:5000],
        "not-json.ipynb": "this is my homework, I could not upload the notebook",
        "other-stage.ipynb": json.dumps({**sol, "metadata": {**sol["metadata"], "sgdkit": {"stage": "02-descent"}}}),
        "other-init-cell.ipynb": json.dumps({**sol, "metadata": {}, "cells": [
            {**sol["cells"][0], "source": "import otter\ngrader = otter.Notebook('descent.ipynb')"}]}),
        "python-loop.ipynb": notebook_with(sol, "while True:\n    pass"),
        "c-loop.ipynb": notebook_with(sol, "sum(range(10**15))"),
        "exit.ipynb": notebook_with(sol, "import os\nos._exit(1)"),
        "bytearray-hog.ipynb": notebook_with(sol, "x = bytearray(8 * 2**30)"),
        "list-hog.ipynb": notebook_with(sol, "hog = []\nwhile True:\n    hog.append(bytearray(64 * 2**20))"),
        "prints-50mb.ipynb": notebook_with(sol, "for _ in range(50):\n    print('x' * 2**20)"),
        "crashing-cell.ipynb": notebook_with(sol, "1 / 0", at=len(sol["cells"]) // 2),
        # Hangs only when the grader calls it: the probe's own time budget, then the next question.
        "hanging-answer.ipynb": notebook_with(sol, "def forever(self):\n    while True:\n        pass\n\n"
                                              "List2D.mean = forever"),
        "allclose.ipynb": notebook_with(sol, "import numpy as np\nnp.allclose = lambda *a, **k: True"),
        "rewrite-tests.ipynb": notebook_with(sol, "import os\nos.makedirs('tests', exist_ok=True)\n"
                                             "open('tests/list2d_mean.py', 'w').write('OK_FORMAT = False')"),
        "rewrite-match.ipynb": notebook_with(sol, "open('match/list2d.py', 'a').write('\\n# all good\\n')"),
        "doctest.ipynb": notebook_with(sol, "import doctest\ndoctest.DocTestRunner.summarize = "
                                       "lambda self, verbose=None: doctest.TestResults(0, 9)"),
        "otter-check.ipynb": notebook_with(sol, "import otter\notter.Notebook.check = lambda self, *a, **k: None"),
        "otter-results.ipynb": notebook_with(sol, "from otter.test_files import abstract_test\n"
                                             "abstract_test.TestFile.passed_all = property(lambda self: True)\n"
                                             "abstract_test.TestFile.grade = property(lambda self: 1)"),
        # Reads the kit's own files at grading time: the solution notebook and reference library.
        "reads-solution.ipynb": notebook_with(empty, "import json, sys\n"
                                              f"sys.path.insert(0, {str(SOLUTIONS)!r})\n"
                                              f"answer = json.load(open({str(solution)!r}))\n"
                                              "from match.list2d import List2D as Reference\n"
                                              "List2D.mean = Reference.mean"),
        "network.ipynb": notebook_with(sol, "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=5)"),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    # An otter export zip: the blank notebook, a shadow checks package and library, and a poisoned log.
    with zipfile.ZipFile(folder / "export.zip", "w") as zf:
        zf.write(blank, "losses.ipynb")
        zf.writestr("sgdkit_checks/__init__.py", "def check(*args):\n    pass\n")
        zf.writestr("match/__init__.py", f"exec(open({str(SOLUTIONS / 'match' / '__init__.py')!r}).read())\n")
        zf.writestr(".OTTER_LOG", pickle.dumps(Marker(str(marker))))


@pytest.fixture(scope="module")
def hostile_batch(built, tmp_path_factory):
    """All hostile submissions in ONE grading run with 2 workers: ({file: result}, out folder, marker)."""
    zips, solution, blank = built
    inbox = tmp_path_factory.mktemp("hostile")
    marker = tmp_path_factory.mktemp("marker") / "unpickled"
    write_hostile(inbox, solution, blank, marker)
    out = tmp_path_factory.mktemp("hostile-graded")
    results, *leftovers = graded_without_leftovers([inbox], out, zips, tmp_path_factory.mktemp("temp"),
                                                   workers=2, timeout=30, memory=2 << 30)
    return results, out, marker, leftovers


def status_of(results, name):
    return results[name]["status"]


@pytest.mark.slow
def test_every_submission_gets_a_row(hostile_batch):
    """Does every hostile or broken file get exactly one grades.csv row?"""
    results, out, _, _ = hostile_batch
    rows = read_csv(out / "grades.csv")
    assert sorted(r["file"] for r in rows) == sorted(results) and len(results) == 22


@pytest.mark.slow
@pytest.mark.parametrize("name, status", [
    ("empty.ipynb", "invalid"), ("truncated.ipynb", "invalid"), ("not-json.ipynb", "invalid"),
    ("other-stage.ipynb", "wrong-stage"), ("other-init-cell.ipynb", "wrong-stage"), ("exit.ipynb", "crashed"),
    ("c-loop.ipynb", "timeout"),
])
def test_unrunnable_submissions_score_zero(hostile_batch, name, status):
    """Do broken files, another stage's notebook, os._exit and an unstoppable C loop score 0 with their status?"""
    results = hostile_batch[0]
    assert status_of(results, name) == status, results[name]["detail"]
    assert results[name]["total"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name, status", [
    ("python-loop.ipynb", "timeout"), ("bytearray-hog.ipynb", "memory"), ("list-hog.ipynb", "memory"),
    ("prints-50mb.ipynb", "output-limit"), ("crashing-cell.ipynb", "cell-error"), ("network.ipynb", "cell-error"),
])
def test_recoverable_problems_are_graded_and_reported(hostile_batch, name, status):
    """Is a stoppable loop, a memory hog, huge output or a crashing cell reported, and the rest graded?"""
    results = hostile_batch[0]
    assert status_of(results, name) == status, results[name]["detail"]
    assert results[name]["total"] == 24, results[name]["questions"]


@pytest.mark.slow
@pytest.mark.parametrize("name, what", [
    ("allclose.ipynb", "numpy.allclose was replaced"), ("rewrite-tests.ipynb", "tests/list2d_mean.py was written"),
    ("rewrite-match.ipynb", "match/list2d.py was changed"),
    ("doctest.ipynb", "doctest.DocTestRunner.summarize was replaced"),
])
def test_tampering_scores_zero_and_says_what(hostile_batch, name, what):
    """Does each tampering earn 0 on every question, with a status naming what was tampered with?"""
    results, out = hostile_batch[:2]
    assert results[name]["status"] == "tampered" and what in results[name]["detail"], results[name]["detail"]
    assert results[name]["total"] == 0
    text = (out / "feedback" / f"{name}.md").read_text()
    assert "Grading note: tampered: " in text and what in text and "Hidden check" not in text


@pytest.mark.slow
@pytest.mark.parametrize("name, status", [("otter-check.ipynb", "ok"), ("otter-results.ipynb", "cell-error")])
def test_otter_in_the_kernel_is_inert(hostile_batch, name, status):
    """Is the graded kernel's otter an inert stand-in (its test files absent), so patching it changes nothing?

    Both notebooks hold the solution: what otter would have said in the kernel never counted, and now no
    real otter is there to patch.
    """
    result = hostile_batch[0][name]
    assert result["status"] == status and result["total"] == 24, result["detail"]
    if status == "cell-error":
        assert "No module named 'otter.test_files'" in result["detail"]


@pytest.mark.slow
def test_answer_that_hangs_costs_only_its_question(hostile_batch):
    """Does a function that hangs when probed lose its own question only, with a timeout status?"""
    result = hostile_batch[0]["hanging-answer.ipynb"]
    assert (result["status"], result["detail"][:21]) == ("timeout", "probing list2d_mean t"), result["detail"]
    assert result["questions"]["list2d_mean"]["points"] == 0 and result["total"] == 24 - 4


@pytest.mark.slow
def test_notebook_cannot_read_the_kits_files(hostile_batch):
    """Is the kit's solution invisible at grading time, so copying it earns nothing?"""
    result = hostile_batch[0]["reads-solution.ipynb"]
    assert result["status"] == "cell-error" and "FileNotFoundError" in result["detail"], result["detail"]
    assert result["total"] == 0


@pytest.mark.slow
def test_export_zip_uses_only_its_notebook(hostile_batch):
    """Is a zip graded on its notebook alone: shadow packages ignored, .OTTER_LOG never unpickled?"""
    results, _, marker, _ = hostile_batch
    assert results["export.zip"]["status"] == "ok" and results["export.zip"]["total"] == 0
    assert not marker.exists()


@pytest.mark.slow
def test_network_is_unreachable(hostile_batch):
    """Does a connection attempt from the notebook fail for lack of a network?"""
    assert "unreachable" in hostile_batch[0]["network.ipynb"]["detail"]


def test_cli_errors_are_one_line_each(tmp_path, capsys):
    """Does an unknown stage exit 2 with one `sgdkit grade:` line on stderr, even with -q?"""
    from sgdkit import cli

    assert cli.main(["grade", "-q", "--stage", "09-nope", "--out", str(tmp_path / "out"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgdkit grade: no autograder for stage '09-nope'") and err.count("\n") == 1, err


@pytest.mark.slow
def test_hostile_batch_leaves_nothing_behind(hostile_batch):
    """After the hostile batch, is no sandbox or kernel running and no grading temp folder left?"""
    processes, folders = hostile_batch[3]
    assert processes == [] and folders == []
