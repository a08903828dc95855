"""Fast tests (no kernels) of what the kit writes and reads for people: CSV cells, file names, feedback Markdown.

The attacks in attacks/files.py check the same through real `sgdkit grade`;
here each guard is tried on its own, on more inputs than a batch could afford.
"""
import csv
import json
import os
import re
import types

import pytest
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from attacks.files import BREAKOUT, ONE_LINE, feedback_problems, shown_text, zipped
from sgdkit import compare, export
from sgdkit.feedback import feedback, md_block, md_quote, md_text, save_result, write_grades
from sgdkit.outputs import FORMULA_START, MAX_FLAT, PLAIN_NUMBER, flat_name, read_cell, read_csv, safe_cell, visible, write_csv
from sgdkit.results import read_result
from sgdkit.submissions import Rejected, find_submissions, read_notebook
from test_report import write_graded

HOSTILE_CELLS = ['=HYPERLINK("http://evil","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\t=1+1", "\r=1+1",
                 "\n=1", "'=1+1", "'quoted"]


def raw_cells(path):
    """Every cell of a CSV exactly as written."""
    with open(path, newline="", encoding="utf-8") as f:
        return [cell for row in csv.reader(f) for cell in row]


# ---------------------------------------------------------------- CSV


@pytest.mark.parametrize("text", HOSTILE_CELLS)
def test_formula_like_cells_get_a_quote_and_read_back(text):
    """Does a cell starting with = + - @ tab CR LF (or ') get a leading ', which read_cell removes?"""
    assert safe_cell(text) == "'" + text
    assert read_cell(safe_cell(text)) == text


@pytest.mark.parametrize("value", ["-1.5", "+2", "24", "66.67", "1e-05", "", "alice.ipynb", "ok", "a=b", 3, -1.5])
def test_numbers_and_ordinary_text_are_kept(value):
    """Are the kit's numbers (even negative) and ordinary text written as they are?"""
    assert safe_cell(value) == value and read_cell(safe_cell(value)) == value


def test_write_and_read_csv_round_trip(tmp_path):
    """Does write_csv neutralise every formula-like cell (header too), and read_csv give back the original text?"""
    header = ["file", "=roster column", "total"]
    rows = [[text, f"{text}\nsecond line", "-1.5"] for text in HOSTILE_CELLS]
    write_csv(tmp_path / "x.csv", header, rows)
    assert [c for c in raw_cells(tmp_path / "x.csv") if c.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(c)] \
        == []
    columns, back = read_csv(tmp_path / "x.csv")
    assert columns == header and [[r[c] for c in columns] for r in back] == rows


def test_grades_csv_neutralises_names_but_not_scores(tmp_path):
    """Does write_grades quote a formula-like file name and keep points, total and percent as numbers?"""
    spec = types.SimpleNamespace(questions=["q1"])
    result = {"file": "=1+1.ipynb", "questions": {"q1": {"points": 2.5}}, "total": 2.5, "percent_correct": 62.5,
              "status": "ok", "detail": ""}
    write_grades(tmp_path / "grades.csv", spec, [result])
    assert raw_cells(tmp_path / "grades.csv")[5:] == ["'=1+1.ipynb", "2.5", "2.5", "62.5", "ok"]


def neutralised(folder):
    """A write_graded folder whose grades.csv is rewritten as the kit writes it (through write_csv)."""
    with open(folder / "grades.csv", newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    write_csv(folder / "grades.csv", header, rows)
    return folder


def test_compare_matches_neutralised_names(tmp_path):
    """Does the regrade preview find a formula-like name's results across two gradings, and neutralise changes.csv?"""
    name = '=HYPERLINK("http://evil","y").ipynb'
    old = neutralised(write_graded(tmp_path / "old", "01-losses", {name: {"fails": ["matrix_abs/test_gradient"]},
                                                                    "+cmd.ipynb": {}}))
    new = neutralised(write_graded(tmp_path / "new", "01-losses", {name: {}, "+cmd.ipynb": {}}))
    changes = compare.compare(old, new)
    assert [c.file for c in changes] == [name]
    assert changes[0].why == ["matrix_abs 1 -> 3 (test_gradient now passes)"]  # its results were found by name
    compare.write_changes(changes, tmp_path / "changes.csv")
    assert raw_cells(tmp_path / "changes.csv")[9] == "'" + name
    assert read_csv(tmp_path / "changes.csv")[1][0]["file"] == name


def test_gradebook_neutralises_students_and_roster(tmp_path):
    """Are students from file names and roster columns neutralised in gradebook.csv, and read back intact?"""
    neutralised(write_graded(tmp_path / "g", "01-losses", {"=cmd_losses.ipynb": {}, "@bob_losses.ipynb": {}}))
    roster = tmp_path / "roster.csv"
    roster.write_text('student,=note\n=cmd,"+1+1"\n@bob,x\n', encoding="utf-8")
    export.export([("01-losses", tmp_path / "g", "{student}_losses.ipynb")], tmp_path / "book.csv", roster,
                  warn=lambda message: None)
    assert raw_cells(tmp_path / "book.csv")[:6] == ["student", "'=note", "01-losses_total", "01-losses_percent",
                                                    "'=cmd", "'+1+1"]
    columns, rows = read_csv(tmp_path / "book.csv")
    assert columns[1] == "=note" and [(r["student"], r["01-losses_total"]) for r in rows] == [("=cmd", "5"),
                                                                                              ("@bob", "5")]
    # The gradebook as the next roster: its quoted names still match the files.
    warnings = []
    export.export([("01-losses", tmp_path / "g", "{student}_losses.ipynb")], tmp_path / "book2.csv",
                  tmp_path / "book.csv", warn=warnings.append)
    assert warnings == [] and [r["student"] for r in read_csv(tmp_path / "book2.csv")[1]] == ["=cmd", "@bob"]


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("raw, shown", [
    ("losses.ipynb", "losses.ipynb"), ("é ü 中.ipynb", "é ü 中.ipynb"), ("a\nb\tc\r.ipynb", "a\\nb\\tc\\r.ipynb"),
    ("bad-\udcff.ipynb", "bad-\\xff.ipynb"), ("\x1b[2J\u202egnp.ipynb", "\\x1b[2J\\u202egnp.ipynb"),
    ("line\u2028sep\x85.ipynb", "line\\u2028sep\\x85.ipynb"),
])
def test_visible_shows_hidden_characters_as_escapes(raw, shown):
    """Are control, line-breaking and bidi characters and undecodable bytes shown as escapes, the rest kept?"""
    assert visible(raw) == shown


@pytest.mark.parametrize("file, flat", [
    ("blank.ipynb", "blank.ipynb"), ("alice/losses.ipynb", "alice%2Flosses.ipynb"),
    ("losses (2).ipynb", "losses (2).ipynb"), ("50%.ipynb", "50%25.ipynb"),
])
def test_flat_name_keeps_ordinary_names(file, flat):
    """Do ordinary names keep the readable results/feedback names they always had?"""
    assert flat_name(file) == flat


@pytest.mark.parametrize("file", ["é" * 100 + ".ipynb", "a" * 300 + ".ipynb", "x" * 103 + "é" * 50,
                                  "\udcff" * 200, "a/" * 200 + "b.ipynb"])
def test_flat_name_is_short_valid_and_unique(tmp_path, file):
    """Is any name's results/feedback name ASCII, short enough for any file system, whole %XX escapes, and unique?"""
    flat = flat_name(file)
    assert flat.isascii() and len(flat) <= MAX_FLAT and re.fullmatch(r"([^%]|%[0-9A-F]{2})*~[0-9a-f]{16}", flat)
    assert flat_name(file + "x") != flat and flat_name(file[:-1]) != flat
    (tmp_path / f"{flat}.json").write_text("{}")  # the file system takes it


def test_odd_entries_in_a_folder_all_get_rows(tmp_path):
    """Do a broken link, a pipe, a folder link loop, a non-UTF-8 name, a newline and a long name each get a row?"""
    (tmp_path / "ok.ipynb").write_text("{}")
    (tmp_path / "broken.ipynb").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe.ipynb")
    os.mkdir(tmp_path / "sub")
    (tmp_path / "sub" / "loop").symlink_to(tmp_path)  # walking it would never end
    (tmp_path / "sub" / "new\nline.ipynb").write_text("{}")
    (tmp_path / ("é" * 100 + ".ipynb")).write_text("{}")
    open(os.path.join(os.fsencode(tmp_path), b"bad-\xff.ipynb"), "w").close()
    open(os.path.join(os.fsencode(tmp_path), b"bad-\\xff.ipynb"), "w").close()  # the same name once made visible
    subs = {s.file: s for s in find_submissions([tmp_path])}
    assert sorted(subs) == sorted(["ok.ipynb", "broken.ipynb", "pipe.ipynb", "new\\nline.ipynb", "é" * 100 + ".ipynb",
                                   "bad-\\xff.ipynb", "bad-\\xff.ipynb (2)"])
    for name, why in [("broken.ipynb", "could not read the file"), ("pipe.ipynb", "not a regular file")]:
        with pytest.raises(Rejected, match=why):
            read_notebook(subs[name].path)  # the pipe must not block
    assert read_notebook(subs["bad-\\xff.ipynb"].path) == b""


def test_a_folder_that_cannot_be_listed_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    """Is an unlistable subfolder reported on stderr, and the rest of the inbox still found?"""
    (tmp_path / "locked").mkdir()
    (tmp_path / "ok.ipynb").write_text("{}")
    scandir = os.scandir

    def refuse_locked(path="."):  # as a folder without read permission does for a non-root grader
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_locked)
    assert [s.file for s in find_submissions([tmp_path])] == ["ok.ipynb"]
    assert "could not list" in caplog.text


def test_a_broken_link_given_by_name_gets_a_row(tmp_path):
    """Is a broken link named on the command line a submission (that cannot be read), not a missing path?"""
    (tmp_path / "gone.ipynb").symlink_to(tmp_path / "nowhere")
    assert [s.file for s in find_submissions([tmp_path / "gone.ipynb"])] == ["gone.ipynb"]
    with pytest.raises(FileNotFoundError):
        find_submissions([tmp_path / "missing.ipynb"])


@pytest.fixture(scope="module")
def blank():
    """A minimal blank notebook (parsed JSON) for the zip builders of attacks/files.py."""
    return {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.parametrize("make, why", [
    (zipped("a.ipynb", "b/a.ipynb"), "zip holds 2 notebooks"),
    (zipped("a.ipynb", padding=100 << 20), "larger than 64 MB"),
    (zipped("a.ipynb", padding=100 << 20, lie=True), "not a readable zip"),
])
def test_hostile_zips_are_invalid(tmp_path, blank, make, why):
    """Are two notebooks, a decompression bomb and a bomb whose headers lie each refused, reading at most the cap?"""
    (tmp_path / "x.zip").write_bytes(make(blank))
    with pytest.raises(Rejected, match=why) as caught:
        read_notebook(tmp_path / "x.zip")
    assert caught.value.kind == "invalid"


def test_corrupt_deflate_data_is_an_invalid_zip(tmp_path, blank):
    """Does a zip whose compressed bytes are garbage give 'invalid', not a grader crash?"""
    data = bytearray(zipped("a.ipynb")(blank))
    data[40:60] = b"\xff" * 20  # inside the deflate stream
    (tmp_path / "x.zip").write_bytes(bytes(data))
    with pytest.raises(Rejected, match="not a readable zip"):
        read_notebook(tmp_path / "x.zip")


@pytest.mark.parametrize("member", ["../../evil.ipynb", "/tmp/evil.ipynb", "<b>\n=1+1 " + "é" * 80 + ".ipynb"])
def test_odd_member_names_are_read_never_extracted(tmp_path, blank, member):
    """Is the one notebook of a zip read (whatever its name), with nothing written anywhere?"""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.zip").write_bytes(zipped(member)(blank))
    assert json.loads(read_notebook(tmp_path / "in" / "x.zip")) == blank
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in", "x.zip"]


def test_a_failed_write_is_the_rows_status(tmp_path):
    """When feedback cannot be written, does the result say so (to be regraded) instead of raising?"""
    (tmp_path / "results").mkdir()
    (tmp_path / "feedback").write_text("a file where the folder should be")
    result = {"file": "a.ipynb", "status": "ok", "detail": "", "questions": {}, "total": 3, "possible": 3,
              "percent_correct": 100, "notes": [], "grader": "1:x:0"}
    save_result(tmp_path, result, types.SimpleNamespace(name="01-losses", questions=[], manual=[]))
    assert result["status"] == "crashed"
    assert result["detail"].startswith("graded, but its feedback or results could not be written")
    assert "grader" not in result and result["total"] == 3 and "status before writing failed: ok" in result["notes"]


def test_text_that_is_not_unicode_is_written_anyway(tmp_path):
    """Is a kernel's message holding a lone surrogate (not encodable as UTF-8) written, and the JSON read back?"""
    for folder in ("results", "feedback"):
        (tmp_path / folder).mkdir()
    result = {"file": "a.ipynb", "status": "cell-error", "detail": "cell 1 raised ValueError: \ud800", "questions": {},
              "total": 0, "possible": 0, "percent_correct": 0, "notes": []}
    save_result(tmp_path, result, types.SimpleNamespace(name="01-losses", questions=[], manual=[]))
    assert result["status"] == "cell-error"  # no write failed
    assert read_result(tmp_path, "a.ipynb")["detail"] == result["detail"]
    assert "ValueError: \\ud800" in shown_text((tmp_path / "feedback" / "a.ipynb.md").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- Markdown

PAYLOADS = [ONE_LINE, "<script>alert(1)</script>", "![t](http://evil/t.png)", "**Total: 24 / 24 points**",
            "[click](http://evil) <http://evil> <a@b.c>", "# heading", "## Total: 24 / 24", "- item", "+ item",
            "1. item", "2) item", "> quote", "`code` and ``more`` and ```", "a_b _c_ __init__ *x* ~~gone~~",
            "| a | b |", "&lt;b&gt; &amp; &#42;", "back\\slash\\", "$x^2$ and $$y$$", "===", "---", "***", "___",
            "http://evil.com www.evil.com a@b.com", "x\x1by\u202ez", "<!-- comment --> <?php ?> <![CDATA[x]]>"]


@pytest.mark.parametrize("text", PAYLOADS)
def test_one_line_text_renders_as_itself(text):
    """Rendered on its own line (the riskiest place), does md_text(text) show exactly `text`, with no markup?"""
    html = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(md_text(text))
    assert html == f"<p>{escapeHtml(visible(text))}</p>\n"


@pytest.mark.parametrize("text", ["tampered: numpy.allclose was replaced", "tests/list2d_mean.py was written",
                                  "cell 5 (x = 1) raised ValueError: boom (and 2 more cell(s))"])
def test_ordinary_text_is_left_readable(text):
    """Is an ordinary status left exactly as it is, for the student reading the raw file?"""
    assert md_text(text) == text


@pytest.mark.parametrize("text", [BREAKOUT, "a\n```\nb\n``````\n~~~\nc", "first\n\nnot indented\n\tx\n  ```\nlast",
                                  "ends in a fence\n```", "x\x0by\x1cz\u2028w"])
def test_multi_line_text_stays_in_its_block(text):
    """Inside a list item, does md_block keep the whole text in one code block, verbatim, with nothing after it?"""
    markdown = "\n".join(md_quote("- Public test `x`:", text, indent="  ")) + "\n\nAfter.\n"
    tokens = MarkdownIt("commonmark", {"html": True}).parse(markdown)
    fences = [t for t in tokens if t.type == "fence"]
    assert len(fences) == 1 and fences[0].content == "\n".join(visible(line.expandtabs(4))
                                                               for line in text.strip().splitlines()) + "\n"
    assert [t.type for t in tokens if t.type.endswith("_open")] == ["bullet_list_open", "list_item_open",
                                                                  "paragraph_open", "paragraph_open"]


def test_fence_is_longer_than_any_backtick_run():
    """Is the fence three backticks, or one more than the longest run inside?"""
    assert md_block("plain")[0] == "```" and md_block("a ```````` b", "  ")[0] == "  `````````"


def test_feedback_of_a_hostile_submission_renders_as_plain_text():
    """Does a whole feedback page with a hostile name, status and public message render with the kit's markup only?"""
    spec = types.SimpleNamespace(name="01-losses", questions=["list2d_mean"], manual=[])
    tests = [{"name": "small_example", "hidden": False, "points": 0, "passed": False, "message": BREAKOUT},
             {"name": "one_line", "hidden": False, "points": 0, "passed": False, "message": ONE_LINE},
             {"name": "value", "hidden": True, "points": 2, "passed": False, "hint": "(yhat - y)**2 * 2 **"}]
    result = {"file": "<script>x</script> **Total: 9 / 9** # [a](http://b).ipynb", "total": 0, "possible": 4,
              "percent_correct": 0, "status": "cell-error", "detail": f"cell 3 raised ValueError: {BREAKOUT}",
              "questions": {"list2d_mean": {"points": 0, "possible": 4, "tests": tests}}}
    text = feedback(result, spec)
    assert feedback_problems(text) == []
    shown = shown_text(text)
    assert result["file"] in shown and BREAKOUT in shown and ONE_LINE in shown and "(yhat - y)**2 * 2 **" in shown
