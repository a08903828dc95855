"""Tests of `sgdkit report` on hand-made graded folders (the schema `sgdkit grade` writes).

`write_graded` is also used by test_export.py.
"""
import base64
import csv
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from sgdkit import cli
from sgdkit.report import write_report
from sgdkit.results import load_graded, status_text

# question -> [(test, hidden, points, hint)], like a small stage 01.
TESTS = {
    "list2d_mean": [("test_small_example", False, 0, "List2D(2, 3, ...).mean() should be 3.5"),
                    ("test_values", True, 2, "mean equals sum / (nrow * ncol) on random shapes")],
    "matrix_abs": [("test_small_example", False, 0, "abs(mat([[-1, 2]])) should be [[1, 2]]"),
                   ("test_gradient", True, 2, "the gradient is sign(x) times the upstream gradient"),
                   ("test_subgradient", True, 1, "at exactly 0 any value in [-1, 1] is accepted")],
}


def write_graded(folder, stage, submissions, tests=TESTS):
    """Write grades.csv and results/*.json as `sgdkit grade` does.

    `submissions` maps a file name to the tests it fails ("question/test", or
    "*" for all) and optionally a status and its detail: {"fails": [...], "status": "timeout", "detail": "..."}.
    """
    folder = Path(folder)
    (folder / "results").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (file, spec) in enumerate(submissions.items()):
        fails = spec.get("fails", [])
        questions = {}
        for question, cases in tests.items():
            run = [{"name": name, "hidden": hidden, "points": points,
                    "passed": "*" not in fails and f"{question}/{name}" not in fails,
                    ("hint" if hidden else "message"): hint}
                   for name, hidden, points, hint in cases]
            questions[question] = {"points": sum(t["points"] for t in run if t["passed"]),
                                   "possible": sum(t["points"] for t in run), "tests": run, "details": {}}
        total = sum(q["points"] for q in questions.values())
        possible = sum(q["possible"] for q in questions.values())
        status, detail = spec.get("status", "ok"), spec.get("detail", "")
        result = {"file": file, "sha256": "0" * 64, "stage": stage, "status": status, "detail": detail, "seed": 0,
                  "seconds": 1.0, "questions": questions, "total": total, "possible": possible,
                  "percent_correct": round(100 * total / possible, 2)}
        (folder / "results" / f"{i:03d}.json").write_text(json.dumps(result), encoding="utf-8")
        rows.append([file] + [questions[q]["points"] for q in tests] + [total, result["percent_correct"],
                                                                          status_text(result)])
    with open(folder / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", *tests, "total", "percent_correct", "status"])
        writer.writerows(rows)
    return folder


CLASS = {
    "full.ipynb": {"fails": ["matrix_abs/test_subgradient"]},
    "jdoe_losses.ipynb": {"fails": ["matrix_abs/test_gradient", "matrix_abs/test_subgradient"]},
    "losses (2).ipynb": {"fails": ["list2d_mean/test_values", "matrix_abs/test_gradient", "matrix_abs/test_subgradient"]},
    "<b>bold</b>.ipynb": {"fails": ["matrix_abs/test_subgradient"]},
    "hangs.ipynb": {"fails": ["*"], "status": "timeout", "detail": "code cell 3 still running after 20 s"},
}


@pytest.fixture
def report(tmp_path):
    """The report of a five-student class, as HTML text."""
    write_graded(tmp_path / "losses", "01-losses", CLASS)
    return write_report([tmp_path / "losses"], tmp_path / "report.html").read_text(encoding="utf-8")


def test_plots_are_inline_pngs(report):
    """Are both plots (histogram and pass rates) inlined as decodable PNG data URIs?"""
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', report)
    assert len(uris) == 2, f"expected 2 inline plots, found {len(uris)}"
    for uri in uris:
        assert base64.b64decode(uri).startswith(b"\x89PNG\r\n\x1a\n")


def test_no_external_assets(report):
    """Does the report load nothing from outside the file (no http, no src= to a path)?"""
    assert "http://" not in report and "https://" not in report
    sources = re.findall(r'(?:src|href)="([^"]*)"', report)
    assert all(s.startswith(("data:", "#")) for s in sources), sources


def test_most_failed_tests_with_hints(report):
    """Are the failed tests worth points listed with their hints and counts, most failed first?"""
    table = report.split("Tests failed most often")[1].split("<details>")[0]
    assert table.index("test_subgradient") < table.index("test_gradient") < table.index("test_values")
    assert "at exactly 0 any value in [-1, 1] is accepted" in table
    assert "5 of 5 (100%)" in table  # test_subgradient
    assert "3 of 5 (60%)" in table  # test_gradient
    assert "test_small_example" not in table, "0-point public tests go in their own list"


def test_public_tests_listed_apart(report):
    """Are failed public tests listed apart, with the assert's message?"""
    public = report.split("<summary>Public tests failed")[1].split("</details>")[0]
    assert "test_small_example" in public and "should be 3.5" in public


def test_rejected_files_left_out_of_test_counts(tmp_path):
    """Do files that never ran (invalid, wrong stage) stay out of the test counts but in the list?"""
    write_graded(tmp_path / "g", "01-losses", {
        "a.ipynb": {"fails": ["matrix_abs/test_gradient"]}, "b.ipynb": {},
        "c.ipynb": {"fails": ["*"], "status": "invalid", "detail": "not a notebook (broken JSON)"},
        "d.ipynb": {"fails": ["*"], "status": "wrong-stage", "detail": "this is a 02-descent notebook"}})
    html = write_report([tmp_path / "g"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "1 of 2 (50%)" in html and "of 4" not in html
    section = html.split("<h3>Not graded fully (status not ok)</h3>")[1].split("<details>")[0]
    assert "c.ipynb" in section and "not a notebook (broken JSON)" in section and "d.ipynb" in section


def test_flags(report):
    """Are a test nobody passed and a test everybody passed flagged, and no other?"""
    flags = report.split("<h3>Flags</h3>")[1].split("<h3>")[0]
    assert "test_subgradient</code>: nobody passed it" in flags
    assert flags.count("<li>") == 1, "the hanging submission failed every test, so none was passed by all"


def test_everybody_passed_flag(tmp_path):
    """Is a test every submission passed flagged as possibly checking nothing?"""
    write_graded(tmp_path / "g", "01-losses", {"a.ipynb": {}, "b.ipynb": {"fails": ["matrix_abs/test_gradient"]}})
    html = write_report([tmp_path / "g"], tmp_path / "r.html").read_text(encoding="utf-8")
    flags = html.split("<h3>Flags</h3>")[1].split("<h3>")[0]
    assert "list2d_mean</code> / <code>test_values</code>: everybody passed it" in flags
    assert "test_gradient</code>: everybody" not in flags


def test_not_graded_fully(report):
    """Is the hanging submission listed with its status, and the others not?"""
    section = report.split("<h3>Not graded fully (status not ok)</h3>")[1].split("<h3>")[0].split("<details>")[0]
    assert "hangs.ipynb" in section and ">timeout<" in section and "still running after 20 s" in section
    assert "jdoe_losses.ipynb" not in section


def test_file_names_are_escaped(report):
    """Is a student's file name shown as text, never as HTML?"""
    assert "<b>bold</b>" not in report
    assert "&lt;b&gt;bold&lt;/b&gt;.ipynb" in report


def test_every_submission_text_is_escaped(tmp_path):
    """Are a hostile file name, status and public-test message (all from the submission) shown as text?"""
    script, image = "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    tests = {"list2d_mean": [("test_small_example", False, 0, f"it returned {script}{image}"),
                             ("test_values", True, 2, "mean equals sum / (nrow * ncol)")]}
    write_graded(tmp_path / "g", "01-losses", {
        f"{script}.ipynb": {"fails": ["*"], "status": "cell-error", "detail": f"cell 3 raised ValueError: {image}"},
        "b.ipynb": {"fails": ["*"]}}, tests=tests)
    html = write_report([tmp_path / "g"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.ipynb" in html  # the name, in the lists of submissions
    assert "ValueError: &lt;img src=x onerror=alert(2)&gt;" in html  # the status
    assert "it returned &lt;script&gt;" in html  # the public test's message


def test_cli_writes_two_stages(tmp_path):
    """Does `sgdkit report --out FILE DIR DIR` cover both stages, each with its plots?"""
    write_graded(tmp_path / "a", "01-losses", CLASS)
    write_graded(tmp_path / "b", "02-descent", {"x.ipynb": {}, "y.ipynb": {"fails": ["*"]}})
    out = tmp_path / "out" / "report.html"
    assert cli.main(["report", "--out", str(out), str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    html = out.read_text(encoding="utf-8")
    assert 'id="01-losses"' in html and 'id="02-descent"' in html
    assert html.count("data:image/png;base64,") == 4


def test_missing_folder_is_an_error(tmp_path, capsys):
    """Does a folder without grades.csv give exit 2 and say what is missing?"""
    assert cli.main(["report", "--out", str(tmp_path / "r.html"), str(tmp_path)]) == 2
    assert "grades.csv" in capsys.readouterr().err


def test_load_graded_reads_stage_and_questions(tmp_path):
    """Does load_graded take the stage from the results and the questions from grades.csv?"""
    graded = load_graded(write_graded(tmp_path / "whatever", "02-descent", CLASS))
    assert graded.stage == "02-descent"
    assert graded.questions == ["list2d_mean", "matrix_abs"]
    assert graded.possible("matrix_abs") == 3 and graded.total_possible() == 5


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_dom(html, probe, tmp_path, *flags):
    """The DOM headless Chromium ends with, on `html` with the `probe` script added (it writes to body's dataset)."""
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *flags, f"--user-data-dir={profile}", "--dump-dom",
                               page.as_uri()], capture_output=True, text=True, timeout=120).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_plots_visible_in_chromium(tmp_path):
    """Does headless Chromium load every image of the report (none broken or empty)?"""
    write_graded(tmp_path / "losses", "01-losses", CLASS)
    html = write_report([tmp_path / "losses"], tmp_path / "report.html").read_text(encoding="utf-8")
    # After the load event, count images the browser failed to decode; --dump-dom prints the result.
    probe = ("<script>addEventListener('load', () => { document.body.dataset.images = document.images.length;"
             " document.body.dataset.broken = [...document.images].filter("
             "i => !i.complete || i.naturalWidth < 100).length; });</script>")
    dom = chromium_dom(html, probe, tmp_path)
    assert 'data-images="2"' in dom and 'data-broken="0"' in dom, dom[-500:]
