"""Tests of the gradebook side: `sgdkit export` and the regrade preview (sgdkit.compare).

Graded folders are hand-made with test_report.write_graded; the preview on a
real regrade is in test_demo.py.
"""
import csv
import io

import pytest

from sgdkit import compare, export
from test_report import write_graded


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- export


@pytest.fixture
def two_stages(tmp_path):
    """01-losses graded for jdoe, asmith and a stray file; 02-descent for jdoe and bwu."""
    write_graded(tmp_path / "losses", "01-losses", {
        "jdoe_losses.ipynb": {}, "asmith_losses.ipynb": {"fails": ["matrix_abs/test_gradient"]},
        "losses (2).ipynb": {}})
    write_graded(tmp_path / "descent", "02-descent", {
        "jdoe_descent.ipynb": {"fails": ["*"], "status": "timeout", "detail": "code cell 3 still running after 20 s"}, "bwu_descent.ipynb": {}})
    return [("01-losses", tmp_path / "losses", "{student}_losses.ipynb"),
            ("02-descent", tmp_path / "descent", "{student}_descent.ipynb")]


def test_joins_stages_by_pattern(tmp_path, two_stages):
    """Is there one row per student, with each stage's total and percent, empty where missing?"""
    warnings = []
    problems = export.export(two_stages, tmp_path / "book.csv", warn=warnings.append)
    rows = {r["student"]: r for r in read_csv(tmp_path / "book.csv")}
    assert list(rows) == ["asmith", "bwu", "jdoe"]
    assert rows["jdoe"] == {"student": "jdoe", "01-losses_total": "5", "01-losses_percent": "100.0",
                            "02-descent_total": "0", "02-descent_percent": "0.0"}
    assert rows["asmith"]["01-losses_total"] == "3" and rows["asmith"]["02-descent_total"] == ""
    assert rows["bwu"]["01-losses_total"] == "" and rows["bwu"]["02-descent_total"] == "5"
    assert problems == 1 and "'losses (2).ipynb' does not match" in warnings[0]


def test_roster_keeps_students_without_submissions(tmp_path, two_stages):
    """Does a roster student with no submission at all appear, in roster order, with empty scores?"""
    roster = tmp_path / "roster.csv"
    roster.write_text("email,student,name\nz@x.edu,zlee,Z Lee\nj@x.edu,jdoe,J Doe\n", encoding="utf-8")
    warnings = []
    export.export(two_stages, tmp_path / "book.csv", roster, warn=warnings.append)
    rows = read_csv(tmp_path / "book.csv")
    assert [r["student"] for r in rows] == ["zlee", "jdoe", "asmith", "bwu"]
    assert rows[0] == {"student": "zlee", "email": "z@x.edu", "name": "Z Lee", "01-losses_total": "",
                       "01-losses_percent": "", "02-descent_total": "", "02-descent_percent": ""}
    assert sum("not on the roster" in w for w in warnings) == 2  # asmith and bwu


def test_text_roster(tmp_path, two_stages):
    """Is a plain text roster (one student a line, # comments) read too?"""
    roster = tmp_path / "roster.txt"
    roster.write_text("# section 1\njdoe\n\nasmith\nbwu\nzlee\n", encoding="utf-8")
    assert export.export(two_stages, tmp_path / "book.csv", roster, warn=lambda m: None) == 1
    assert [r["student"] for r in read_csv(tmp_path / "book.csv")] == ["jdoe", "asmith", "bwu", "zlee"]


def test_wildcard_pattern():
    """Does * skip an LMS's submission ids while {student} takes the login?"""
    regex = export.pattern_regex("{student}_*_losses.ipynb")
    assert regex.fullmatch("jdoe_123_4567_losses.ipynb")["student"] == "jdoe"
    assert regex.fullmatch("jdoe_losses.ipynb") is None
    assert export.pattern_regex("{student}.ipynb").fullmatch("a (2).ipynb")["student"] == "a (2)"


@pytest.mark.parametrize("pattern", ["losses.ipynb", "{student}_{student}.ipynb"])
def test_pattern_needs_one_student(pattern):
    """Is a pattern without exactly one {student} refused with a ValueError?"""
    with pytest.raises(ValueError, match="exactly once"):
        export.pattern_regex(pattern)


def test_two_submissions_keep_the_better(tmp_path):
    """Does a student matched twice in one stage keep the higher total, with a warning?"""
    write_graded(tmp_path / "g", "01-losses", {"jdoe_1_losses.ipynb": {"fails": ["*"]}, "jdoe_2_losses.ipynb": {}})
    warnings = []
    export.export([("01-losses", tmp_path / "g", "{student}_*_losses.ipynb")], tmp_path / "b.csv",
                  warn=warnings.append)
    assert read_csv(tmp_path / "b.csv")[0]["01-losses_total"] == "5"
    assert "keeping 'jdoe_2_losses.ipynb'" in warnings[0]


def test_cli(tmp_path, two_stages, capsys):
    """Does `sgdkit export --stage ... --roster ...` write the CSV and exit 1 on an unmatched file?"""
    from sgdkit import cli

    roster = tmp_path / "roster.txt"
    roster.write_text("jdoe\nasmith\nbwu\n", encoding="utf-8")
    argv = ["export", "--out", str(tmp_path / "book.csv"), "--roster", str(roster)]
    for stage, folder, pattern in two_stages:
        argv += ["--stage", stage, str(folder), pattern]
    assert cli.main(argv) == 1
    assert "losses (2).ipynb" in capsys.readouterr().err
    assert len(read_csv(tmp_path / "book.csv")) == 3


# ---------------------------------------------------------------- regrade preview

CLASS = {
    "a.ipynb": {},
    "b.ipynb": {"fails": ["matrix_abs/test_gradient"]},
    "c.ipynb": {"fails": ["list2d_mean/test_values"]},
    "d.ipynb": {"fails": ["*"], "status": "timeout", "detail": "code cell 3 still running after 20 s"},
}


def test_lists_exactly_the_changed_students(tmp_path):
    """After a fixed test, are exactly the students whose points changed listed, with why?"""
    old = write_graded(tmp_path / "old", "01-losses", CLASS)
    # The fix: test_gradient was too strict, b now passes it; c and d unchanged; e is new.
    new = write_graded(tmp_path / "new", "01-losses", {**CLASS, "b.ipynb": {}, "e.ipynb": {"fails": ["*"]}})
    changes = compare.compare(old / "grades.csv", new / "grades.csv")
    assert [c.file for c in changes] == ["b.ipynb", "e.ipynb"]
    b = changes[0]
    assert (b.old_total, b.new_total, b.questions) == (3, 5, {"matrix_abs": (1, 3)})
    assert b.why == ["matrix_abs 1 -> 3 (test_gradient now passes)"]
    assert changes[1].why == ["new submission"]


def test_changed_points_change_percent(tmp_path):
    """When a test becomes worth more, do the students who failed it show a percent change?"""
    old = write_graded(tmp_path / "old", "01-losses", CLASS)
    heavier = {q: [(n, h, 4 if n == "test_values" else p, hint) for n, h, p, hint in cases]
               for q, cases in __import__("test_report").TESTS.items()}
    new = write_graded(tmp_path / "new", "01-losses", CLASS, tests=heavier)
    changes = {c.file: c for c in compare.compare(old, new)}
    assert set(changes) == {"a.ipynb", "b.ipynb", "c.ipynb"}  # d scored 0 of anything
    assert changes["a.ipynb"].why == ["list2d_mean 2 -> 4 (test_values worth 2 -> 4)"]
    assert changes["c.ipynb"].questions == {} and changes["c.ipynb"].old_total == changes["c.ipynb"].new_total
    assert changes["c.ipynb"].why == ["same points, but points possible changed 5 -> 7: percent 60 -> 42.86"]


def test_preview_writes_changes_csv_and_prints(tmp_path):
    """Does preview write DIR/changes.csv and print old, new and why per changed student?"""
    old = compare.load(write_graded(tmp_path / "g", "01-losses", CLASS))
    # Regrade into the same folder: the old grading was loaded before it was overwritten.
    write_graded(tmp_path / "g", "01-losses", {**CLASS, "d.ipynb": {}})
    out = io.StringIO()
    compare.preview(old, tmp_path / "g", out)
    rows = read_csv(tmp_path / "g" / "changes.csv")
    assert [(r["file"], r["old_total"], r["new_total"], r["old_status"], r["new_status"]) for r in rows] == [
        ("d.ipynb", "0", "5", "timeout: code cell 3 still running after 20 s", "ok")]
    assert rows[0]["questions"] == "list2d_mean 0->2; matrix_abs 0->3"
    printed = out.getvalue()
    assert "d.ipynb" in printed and "0 -> 5" in printed and "status timeout: code cell 3 still running after 20 s -> ok" in printed
    assert "a.ipynb" not in printed


def test_no_change(tmp_path, capsys):
    """Does an identical regrade list nobody and say so?"""
    old = write_graded(tmp_path / "old", "01-losses", CLASS)
    new = write_graded(tmp_path / "new", "01-losses", CLASS)
    assert compare.preview(old, new) == []
    assert "no student's score would change" in capsys.readouterr().out
    assert read_csv(new / "changes.csv") == []
