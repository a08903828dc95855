"""Does every attack in tests/attacks earn 0 under real `sgdkit grade` (real otter, real kernels)?

One batch per stage: every attack of that stage, graded together with 2
workers through the `sgdkit grade` command itself. Then the batch must leave
no process, IPC object or temp file behind.
"""
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from attacks import STAGES, all_attacks
from attacks.files import feedback_problems, shown_text
from sgdkit import ASSIGNMENTS
from sgdkit import compare, export
from sgdkit.outputs import FORMULA_START, PLAIN_NUMBER, flat_name, read_csv, safe_cell, visible
from sgdkit.results import read_result

ALL = all_attacks()


def test_corpus_is_large_and_covers_every_stage():
    """Are there at least 30 attacks, each stage attacked, and file names unique?"""
    assert len(ALL) >= 30
    assert {a.stage for a in ALL} == set(STAGES)
    assert len({a.file for a in ALL}) == len(ALL)


@pytest.fixture(scope="module")
def graded(built_kit, tmp_path_factory):
    """{stage: ({file: grades.csv row}, out folder)} for every stage's attacks."""
    found = {}
    for stage in STAGES:
        blank = json.loads(next((ASSIGNMENTS / stage).glob("*.ipynb")).read_text())
        inbox = tmp_path_factory.mktemp(f"attacks-{stage}")
        for attack in (a for a in ALL if a.stage == stage):
            (inbox / attack.file).write_bytes(attack.make(blank))
        out = tmp_path_factory.mktemp(f"graded-{stage}")
        done = subprocess.run([sys.executable, "-m", "sgdkit.cli", "grade", "--stage", stage, "--out", str(out),
                               "--workers", "2", "--timeout", "60", str(inbox)],
                              capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, done.stderr[-3000:]
        # read_csv undoes the CSV-injection guard: rows are keyed by the names grading gave.
        found[stage] = ({row["file"]: row for row in read_csv(out / "grades.csv")[1]}, out)
    return found


def row_of(rows, attack):
    """The grades.csv row of an attack: its file name as grading shows it (escapes for odd characters)."""
    name = visible(attack.file)
    return next((r for file, r in rows.items() if file == name or file.endswith("/" + name)), None)


def feedback_of(graded, attack):
    """The attack's feedback Markdown, found through its grades.csv row."""
    rows, out = graded[attack.stage]
    row = row_of(rows, attack)
    assert row is not None, f"no grades.csv row for {attack.file!r}"
    return (out / "feedback" / f"{flat_name(row['file'])}.md").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("attack", ALL, ids=lambda a: a.file)
def test_attack_earns_nothing(graded, attack):
    """Does this attack get its row with 0 points (and the status it must get, if any)?"""
    rows, out = graded[attack.stage]
    row = row_of(rows, attack)
    assert row is not None, f"no grades.csv row for {attack.file!r}"
    assert float(row["total"]) == 0, f"{attack.file} earned {row['total']} ({attack.pays}): {row['status']}"
    if attack.status:
        assert read_result(out, row["file"])["status"] == attack.status, row["status"]


@pytest.mark.slow
@pytest.mark.parametrize("attack", [a for a in ALL if "feedback_lacks" in a.extra], ids=lambda a: a.file)
def test_feedback_carries_nothing_hidden(graded, attack):
    """Does the attacker's feedback quote none of the grader's hidden code, whatever it printed or returned?"""
    text = feedback_of(graded, attack)
    assert [m for m in attack.extra["feedback_lacks"] if m in text] == []


# ---------------------------------------------------------------- the instructor's files (attacks/files.py)


def formula_cells(path):
    """The cells of a CSV, as written, that a spreadsheet would run as formulas."""
    with open(path, newline="", encoding="utf-8") as f:
        return [cell for row in csv.reader(f) for cell in row
                if cell.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(cell)]


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_csv_files_neutralise_formulas(graded, stage, tmp_path):
    """Is no cell of grades.csv, changes.csv or gradebook.csv a formula, and does every hostile name read back?"""
    rows, out = graded[stage]
    hostile = {visible(a.file) for a in ALL if a.stage == stage and a.extra.get("csv")}
    assert formula_cells(out / "grades.csv") == []
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        written = {row[0] for row in csv.reader(f)}
    assert {safe_cell(name) for name in hostile} <= written  # a leading ', as OWASP says
    # The gradebook: every file name is a student here.
    export.export([(stage, out, "{student}")], tmp_path / "gradebook.csv", warn=lambda message: None)
    assert formula_cells(tmp_path / "gradebook.csv") == []
    assert hostile <= {row["student"] for row in read_csv(tmp_path / "gradebook.csv")[1]}
    # The regrade preview: an old grading where every total differs, so every row is a change.
    old = compare.load(out)
    for row in old.rows:
        row["total"] = "99"
    changes = compare.compare(old, out)
    compare.write_changes(changes, tmp_path / "changes.csv")
    assert formula_cells(tmp_path / "changes.csv") == []
    assert hostile <= {row["file"] for row in read_csv(tmp_path / "changes.csv")[1]}


@pytest.mark.slow
@pytest.mark.parametrize("attack", ALL, ids=lambda a: a.file)
def test_feedback_renders_as_plain_text(graded, attack):
    """Rendered as Markdown, does the feedback show the submission's texts as text: no HTML, image, link, fake total?"""
    text = feedback_of(graded, attack)
    assert feedback_problems(text) == []
    shown = shown_text(text)
    assert [payload for payload in attack.extra.get("shows", []) if payload not in shown] == [], text


@pytest.mark.slow
@pytest.mark.parametrize("attack", [a for a in ALL if "never_written" in a.extra], ids=lambda a: a.file)
def test_zip_members_are_never_extracted(graded, attack):
    """Does a zip member named ../../x or /tmp/x never land anywhere as a file?"""
    name = attack.extra["never_written"]
    _, out = graded[attack.stage]
    landed = list(out.parent.rglob(name)) + [folder / name for folder in
                                              (out.parent.parent, Path(tempfile.gettempdir()), Path.cwd())
                                              if (folder / name).exists()]
    assert landed == []
