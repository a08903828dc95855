"""Tests of `sgdkit demo`, the sample class it grades, and a real regrade preview.

The demo runs once for the module (real build, real grading of every stage's
sample class, a few minutes on 2 cores); the regrade test reuses its grades.
"""
import csv
import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sgdkit import ROOT, ZIPS, compare
from sgdkit.demo import mismatches, read_expected, table
from sgdkit.results import outcome

SAMPLE = ROOT / "examples" / "sample-class"
STAGES = sorted(p.name for p in SAMPLE.iterdir() if (p / "EXPECTED.csv").is_file())


def test_sample_class_is_current():
    """Does regenerating the sample class from the built notebooks change nothing?"""
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "make_sample_class.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, "run examples/make_sample_class.py:\n" + run.stdout + run.stderr


def test_sample_class_covers_the_cases():
    """Has every autograded stage at least 12 submissions: full, partial, bugs, blank, broken, hanging?"""
    assert len(STAGES) >= 3, STAGES
    for stage in STAGES:
        expected = read_expected(SAMPLE / stage)
        assert len(expected) >= 12, stage
        statuses = {row["status"] for row in expected.values()}
        assert {"ok", "invalid", "timeout"} <= statuses, (stage, statuses)
        abouts = " ".join(row["about"] for row in expected.values())
        for kind in ("full marks", "partial work", "bug:", "blank", "broken", "hangs"):
            assert kind in abouts, (stage, kind)


def test_mismatches_names_each_difference():
    """Does the EXPECTED.csv check report a wrong outcome, a wrong status and a missing row?"""
    def result(file, points, status="ok", detail=""):
        return {"file": file, "status": status, "detail": detail, "total": sum(points), "possible": 4,
                "questions": {q: {"points": p, "possible": 2} for q, p in zip("ab", points)}}

    expected = {f: {"file": f, "a": a, "b": b, "status": s, "about": ""} for f, a, b, s in [
        ("x", "full", "partial", "ok"), ("y", "zero", "zero", "timeout"), ("z", "full", "full", "ok")]}
    results = [result("x", [2, 1]), result("y", [0, 2], "cell-error", "cell 3 raised"), result("w", [0, 0])]
    assert mismatches(expected, results) == {
        "y": "b full, expected zero; status cell-error, expected timeout",
        "z": "not graded", "w": "not in EXPECTED.csv"}
    assert (outcome(0, 2), outcome(1, 2), outcome(2, 2), outcome(1, None)) == ("zero", "partial", "full", "full")
    lines = table(results, ["a", "b"], {"y": "status differs"})
    assert lines[0].split()[:3] == ["file", "a/2", "b/2"] and "MISMATCH: status differs" in lines[3]


@pytest.fixture(scope="module")
def demo_run(built_kit, tmp_path_factory):
    """`sgdkit demo --out DIR`, run once, on the kit built already (its build is then a no-op): (exit code,
    printed text, DIR)."""
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    run = subprocess.run([sys.executable, "-m", "sgdkit.cli", "demo", "--out", str(out)],
                         capture_output=True, text=True, timeout=1200, cwd=ROOT)
    return run.returncode, run.stdout + run.stderr, out


@pytest.mark.slow
def test_demo_exits_0(demo_run):
    """Does the demo finish with exit 0 and every row as EXPECTED.csv says?"""
    code, text, _ = demo_run
    assert code == 0, text[-6000:]
    assert "MISMATCH" not in text and "all as expected" in text


@pytest.mark.slow
def test_demo_prints_a_table_per_stage(demo_run):
    """Does the demo print, per stage, a header with every question and one line per submission?"""
    _, text, _ = demo_run
    for stage in STAGES:
        expected = read_expected(SAMPLE / stage)
        questions = [q for q in next(iter(expected.values())) if q not in ("file", "status", "about")]
        header = next((line for line in text.splitlines() if line.split()[:1] == ["file"]
                       and all(f"{q}/" in line for q in questions)), None)
        assert header is not None, f"no table header for {stage}"
        for file in expected:
            assert re.search(rf"^\s+{re.escape(file)}\s.*as expected$", text, re.M), f"{stage}: {file}"


@pytest.mark.slow
def test_demo_writes_grades_and_report(demo_run):
    """Are grades.csv (one row per submission) and a report with two plots per stage written?"""
    _, _, out = demo_run
    for stage in STAGES:
        with open(out / stage / "grades.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert {r["file"] for r in rows} == set(read_expected(SAMPLE / stage))
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 2 * len(STAGES)
    assert all(f'id="{stage}"' in html for stage in STAGES)


def _reweighted_zip(stage, question, part, points, folder):
    """A copy of the stage's autograder (zip and summary) with one hidden test worth `points`."""
    folder.mkdir()
    shutil.copy(ZIPS / f"{stage}.json", folder)
    with zipfile.ZipFile(ZIPS / f"{stage}.zip") as zin, zipfile.ZipFile(folder / f"{stage}.zip", "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == f"tests/{question}.py":
                text, n = re.subn(rf"points=\d+(, hidden=True\)\s*\ndef test_{part}\()", rf"points={points}\1",
                                  data.decode())
                assert n == 1, f"no hidden test_{part} in {info.filename}"
                data = text.encode()
            zout.writestr(info, data)
    return folder


@pytest.mark.slow
def test_regrade_with_a_changed_test_lists_exactly_the_changed(demo_run, tmp_path):
    """After a hidden test is reweighted, does the preview list exactly the students whose grade moved?"""
    _, _, out = demo_run
    from sgdkit.grade import grade

    stage, question, part = "01-losses", "list2d_mean", "value"
    old = compare.load(out / stage)
    files = ["Losses-FINAL-v3.ipynb", "asmith_losses.ipynb", "jdoe_losses.ipynb", "losses.ipynb"]
    zips = _reweighted_zip(stage, question, part, 5, tmp_path / "zips")
    grade([SAMPLE / stage / f for f in files], stage, tmp_path / "new", zips=zips)
    printed = io.StringIO()
    changes = {c.file: c for c in compare.preview(old, tmp_path / "new", printed)}

    # Worked out from the old grading: who passed the reweighted test gains 3 points;
    # who has points but failed it keeps them, out of 3 more possible; who has none is unchanged.
    def passed(file):
        tests = old.results[file]["questions"][question]["tests"]
        return next(t["passed"] for t in tests if t["name"] == part)

    gainers = {f for f in files if passed(f)}
    diluted = {f for f in files if not passed(f) and float(old.rows[[r["file"] for r in old.rows].index(f)]["total"]) > 0}
    assert gainers and diluted, "the sample should have both kinds"
    assert set(changes) == gainers | diluted
    for f in gainers:
        assert changes[f].new_total == changes[f].old_total + 3
        assert f"{question}" in changes[f].why[0] and f"{part} worth 2 -> 5" in changes[f].why[0]
    for f in diluted:
        assert changes[f].new_total == changes[f].old_total and changes[f].new_percent < changes[f].old_percent
    assert (tmp_path / "new" / "changes.csv").is_file()
    assert all(f in printed.getvalue() for f in changes)


@pytest.mark.slow
def test_grade_compare_after_a_resubmission(tmp_path):
    """Does `sgdkit grade --compare` list only the student whose resubmission changed the score?"""
    from sgdkit import cli

    subs = tmp_path / "submissions"
    subs.mkdir()
    shutil.copy(SAMPLE / "01-losses" / "asmith_losses.ipynb", subs / "a_losses.ipynb")  # list2d_mean bug
    shutil.copy(SAMPLE / "01-losses" / "Losses-FINAL-v3.ipynb", subs / "b_losses.ipynb")
    argv = ["grade", "--stage", "01-losses", "--out", str(tmp_path / "graded"), "--timeout", "60", str(subs)]
    assert cli.main(argv) == 0
    # a fixes the bug; the rerun into the same folder regrades only a, and compares with before.
    shutil.copy(SAMPLE / "01-losses" / "Losses-FINAL-v3.ipynb", subs / "a_losses.ipynb")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdout", out)
        assert cli.main(argv + ["--compare", str(tmp_path / "graded" / "grades.csv")]) == 0
    with open(tmp_path / "graded" / "changes.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["file"], r["old_total"], r["new_total"]) for r in rows] == [("a_losses.ipynb", "20", "24")]
    assert rows[0]["why"].startswith("list2d_mean 0 -> 4 (value now passes; shapes now passes")
    assert "a_losses.ipynb" in out.getvalue() and "b_losses.ipynb" not in out.getvalue()
