"""Tests of `sgdkit similarity` and its report section: copies flagged, honest students not.

The generated class (examples/similar_class.py) holds honest stage-02 variants and
disguised copies (renamed, reordered, recommented, one function rewritten).
"""
import importlib.util
import json
import random
import subprocess
import sys

import nbformat
import pytest

from sgdkit import ASSIGNMENTS, ROOT, SOLUTIONS, cli
from sgdkit.answers import fill, solution_regions
from sgdkit.outputs import read_csv
from sgdkit.report import write_report
from sgdkit.similarity import COLUMNS, THRESHOLD, ranked, read_answers, similarity

from test_report import CHROMIUM, chromium_dom, write_graded

spec = importlib.util.spec_from_file_location("similar_class", ROOT / "examples" / "similar_class.py")
similar_class = importlib.util.module_from_spec(spec)
spec.loader.exec_module(similar_class)

STAGES = {"01-losses": "losses", "02-descent": "descent", "03-tradeoffs": "tradeoffs"}


def write_class(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """(folder, planted pairs, the answers read): 300 students, 6 of them disguised copies."""
    files, planted = similar_class.generate(students=300, pairs=6, seed=11)
    folder = write_class(tmp_path_factory.mktemp("class"), files)
    answers, skipped = read_answers([folder], "02-descent")
    assert not skipped and len(answers) == 300
    return folder, planted, answers


def test_planted_copies_flagged_at_the_top(generated, tmp_path):
    """Are the disguised copies exactly the top of similarity.csv, each pair with the questions it copied?"""
    folder, planted, _ = generated
    similarity([folder], "02-descent", tmp_path)
    columns, rows = read_csv(tmp_path / "similarity.csv")
    assert columns == COLUMNS
    top = [frozenset((r["file_a"], r["file_b"])) for r in rows[:len(planted)]]
    assert set(top) == {frozenset((copy, source)) for copy, source, _ in planted}, rows[:10]
    questions = similar_class.QUESTIONS
    for row in rows[:len(planted)]:
        assert 0 < float(row["score"]) <= 1
        changed = next(c for copy, source, c in planted if {copy, source} == {row["file_a"], row["file_b"]})
        # The copied functions' questions are named (a rewritten function may share a question with a copied one).
        copied = {questions[f] for f in similar_class.FUNCTIONS if f != changed}
        assert copied <= set(row["questions"].split("; ")), row


def test_every_planted_pair_above_every_honest_pair(generated):
    """On the generated class, does every planted pair outrank every honest pair, and no honest pair reach the threshold?"""
    _, planted, answers = generated
    floor = 0.4  # a pair whose bound is under it scores under it: only these need scoring one by one
    found, _ = ranked(answers, floor)
    copies = {frozenset((copy, source)) for copy, source, _ in planted}
    planted_scores = [v for v, i, j in found if frozenset((answers[i].file, answers[j].file)) in copies]
    honest_scores = [v for v, i, j in found if frozenset((answers[i].file, answers[j].file)) not in copies]
    assert len(planted_scores) == len(planted)
    assert min(planted_scores) > max(honest_scores + [floor]), (sorted(planted_scores), sorted(honest_scores)[-5:])
    assert max(honest_scores + [0]) < THRESHOLD <= min(planted_scores)


def test_what_the_whole_class_wrote_weighs_nothing(tmp_path):
    """If all 40 students wrote SGD and minibatch SGD as the lecture does, is no honest pair flagged, and a copy still is?

    Those loops are long enough to count: only their rarity (held by everyone) keeps them from flagging.
    """
    template = nbformat.read(similar_class.STUDENT, as_version=4)
    lecture = {f: text for f, (_, text) in solution_regions(SOLUTIONS / "02-descent" / "descent.ipynb").items()
               if f in similar_class.FUNCTIONS[3:]}
    students = [similar_class.Student(random.Random(100 + i)) for i in range(40)]
    for student in students:
        student.verbatim.update(lecture)
    copy, _ = similar_class.disguise(students[0], random.Random(7))
    copy.verbatim.update(lecture)
    files = {f"s{i:02d}.ipynb": similar_class.notebook(s, template) for i, s in enumerate(students)}
    files["copy.ipynb"] = similar_class.notebook(copy, template, swap=True)
    data = similarity([write_class(tmp_path / "in", files)], "02-descent", tmp_path / "out")
    assert [(p["file_a"], p["file_b"]) for p in data["pairs"]] == [("copy.ipynb", "s00.ipynb")], data["pairs"][:3]


def test_renaming_reordering_recommenting_change_nothing(tmp_path):
    """Does a copy disguised in every way but a rewritten function score (nearly) 1 against its source?"""
    template = nbformat.read(similar_class.STUDENT, as_version=4)
    source = similar_class.Student(random.Random(5))
    copy, changed = similar_class.disguise(source, random.Random(6))
    copy.choices[changed] = source.choices[changed]  # no function rewritten this time
    assert copy.names != source.names
    files = {"source.ipynb": similar_class.notebook(source, template),
             "copy.ipynb": similar_class.notebook(copy, template, swap=True)}
    assert files["source.ipynb"] != files["copy.ipynb"]
    data = similarity([write_class(tmp_path / "in", files)], "02-descent", tmp_path / "out")
    assert [(p["file_a"], p["file_b"]) for p in data["pairs"]] == [("copy.ipynb", "source.ipynb")]
    assert data["pairs"][0]["score"] >= 0.95


def written_apart(stage):
    """{name: notebook}: the master's solution, and each k-th valid alternative of the corpus in a notebook of its own.

    Notebook k holds every function's k-th alternative (the functions with fewer stay blank, as handed out).
    """
    notebook = STAGES[stage]
    student = nbformat.read(ASSIGNMENTS / stage / f"{notebook}.ipynb", as_version=4)
    corpus_spec = importlib.util.spec_from_file_location(f"corpus_{notebook}", ROOT / "tests" / "corpus" / f"{notebook}.py")
    corpus = importlib.util.module_from_spec(corpus_spec)
    corpus_spec.loader.exec_module(corpus)
    ways = {f: [text] for f, (_, text) in solution_regions(SOLUTIONS / stage / f"{notebook}.ipynb").items()}
    for entry in corpus.ALTERNATIVES:
        ways[entry["function"]].append(entry["solution"])
    deepest = max(len(w) for w in ways.values())
    return {f"way{k}.ipynb": nbformat.writes(fill(student, {f: w[k] for f, w in ways.items() if k < len(w)})) + "\n"
            for k in range(deepest)}


@pytest.mark.parametrize("stage", STAGES)
def test_correct_answers_written_apart_not_flagged(stage, tmp_path):
    """Are the solution and the corpus's valid alternatives, each written apart, never flagged against each other?"""
    files = written_apart(stage)
    assert len(files) >= 3
    data = similarity([write_class(tmp_path / "in", files)], stage, tmp_path / "out")
    assert data["pairs"] == [], data["pairs"]
    # An answer of a few characters is too short to fingerprint: skipped, with a note that says so.
    assert all(s["why"].startswith("too short") for s in data["skipped"]), data["skipped"]
    assert data["compared"] >= 3


def test_short_answers_alone_never_flag(tmp_path):
    """Do two stage-01 notebooks with the very same answers (each one to three lines) stay unflagged?

    Every correct solution shares such answers: no passage of them reaches MIN_RUN.
    """
    one = written_apart("01-losses")["way0.ipynb"]
    data = similarity([write_class(tmp_path / "in", {"a.ipynb": one, "b.ipynb": one})], "01-losses", tmp_path / "out")
    assert data["compared"] == 2 and data["pairs"] == []


def test_starter_only_never_flagged(generated, tmp_path):
    """Is a notebook holding only the starter code skipped with a note, never paired, even with its twin?"""
    folder, _, _ = generated
    blank = (ASSIGNMENTS / "02-descent" / "descent.ipynb").read_text(encoding="utf-8")
    some = sorted(folder.glob("*.ipynb"))[:3]
    files = {"blank.ipynb": blank, "blank twin.ipynb": blank, **{p.name: p.read_text(encoding="utf-8") for p in some}}
    data = similarity([write_class(tmp_path / "in", files)], "02-descent", tmp_path / "out")
    skipped = {s["file"]: s["why"] for s in data["skipped"]}
    assert set(skipped) == {"blank.ipynb", "blank twin.ipynb"}
    assert all(why.startswith("blank") for why in skipped.values())
    assert not any({"blank.ipynb", "blank twin.ipynb"} & {p["file_a"], p["file_b"]} for p in data["pairs"])


def test_unreadable_and_wrong_stage_skipped_with_a_note(tmp_path, capsys):
    """Do a broken file and another stage's notebook get a note each, while the rest is compared (exit 0)?"""
    files = written_apart("02-descent")
    files["broken.ipynb"] = files["way0.ipynb"][:500]
    files["losses.ipynb"] = (ASSIGNMENTS / "01-losses" / "losses.ipynb").read_text(encoding="utf-8")
    folder = write_class(tmp_path / "in", files)
    assert cli.main(["similarity", "--stage", "02-descent", "--out", str(tmp_path / "out"), str(folder)]) == 0
    data = json.loads((tmp_path / "out" / "similarity.json").read_text(encoding="utf-8"))
    why = {s["file"]: s["why"] for s in data["skipped"]}
    assert why["broken.ipynb"].startswith("invalid:") and why["losses.ipynb"].startswith("wrong-stage:")
    assert data["compared"] == len(files) - 2
    assert "2 skipped" in capsys.readouterr().out


def test_unknown_stage_is_an_error(tmp_path, capsys):
    assert cli.main(["similarity", "--stage", "09-nothing", "--out", str(tmp_path), str(tmp_path)]) == 2
    assert "no student notebook for stage '09-nothing'" in capsys.readouterr().err


def hostile_pair(tmp_path):
    """A copied pair whose file names and code hold spreadsheet formulas and HTML."""
    template = nbformat.read(similar_class.STUDENT, as_version=4)
    source = similar_class.Student(random.Random(1))
    copy, changed = similar_class.disguise(source, random.Random(2))
    copy.choices[changed] = source.choices[changed]
    text = similar_class.notebook(source, template).replace(
        "import math", "import math  # </pre><script>document.body.dataset.pwned = 1</script><b>x</b>", 1)
    files = {"=HYPERLINK(1).ipynb": text, "<img src=x onerror=alert(1)>.ipynb": similar_class.notebook(copy, template),
             "other.ipynb": similar_class.notebook(similar_class.Student(random.Random(3)), template)}
    return write_class(tmp_path / "in", files)


def test_csv_cells_neutralised(tmp_path):
    """Does a file name that a spreadsheet would run get its leading ' in similarity.csv, as in grades.csv?"""
    similarity([hostile_pair(tmp_path)], "02-descent", tmp_path / "out")
    raw = (tmp_path / "out" / "similarity.csv").read_text(encoding="utf-8")
    assert raw.splitlines()[0] == ",".join(COLUMNS)
    assert "'=HYPERLINK(1).ipynb" in raw and ",=HYPERLINK" not in raw and not raw.startswith("=")
    _, rows = read_csv(tmp_path / "out" / "similarity.csv")
    assert {rows[0]["file_a"], rows[0]["file_b"]} == {"=HYPERLINK(1).ipynb", "<img src=x onerror=alert(1)>.ipynb"}


def test_same_output_in_every_process(tmp_path):
    """Are similarity.csv and .json byte-identical across two runs (copydetect's hash() is salted per process)?"""
    folder = hostile_pair(tmp_path)
    outs = []
    for run in ("one", "two"):
        subprocess.run([sys.executable, "-m", "sgdkit.cli", "similarity", "--stage", "02-descent", "-q",
                        "--workers", "2", "--out", str(tmp_path / run), str(folder)], check=True, capture_output=True)
        outs.append([(tmp_path / run / name).read_bytes() for name in ("similarity.csv", "similarity.json")])
    assert outs[0] == outs[1]


@pytest.fixture
def report_html(tmp_path):
    """The report of a graded folder that also holds similarity.json, and that folder."""
    graded = write_graded(tmp_path / "descent", "02-descent", {"a.ipynb": {}, "b.ipynb": {}})
    similarity([hostile_pair(tmp_path)], "02-descent", graded)
    return write_report([graded], tmp_path / "report.html").read_text(encoding="utf-8")


def test_report_lists_pairs_side_by_side(report_html):
    """Does the report's section rank the flagged pair, opening into both answers with the shared code marked?"""
    section = report_html.split("Similar submissions")[1]
    assert "never a grade" in section
    assert section.count('<details class="pair"') == 1
    pair = section.split('<details class="pair" open>')[1].split("</details>")[0]
    assert pair.count("<pre>") == 2 and '<mark class="rare">' in pair
    assert "grader.check" not in pair  # cells as handed out are not the students' code
    assert "&lt;img src=x onerror=alert(1)&gt;.ipynb" in pair and "=HYPERLINK(1).ipynb" in pair


def test_report_escapes_student_code(report_html):
    """Is everything a student wrote (code, file names) escaped in the report?"""
    assert "<script>document.body" not in report_html and "<img src=x" not in report_html
    assert "&lt;/pre&gt;&lt;script&gt;document.body.dataset.pwned = 1&lt;/script&gt;" in report_html


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_report_section_in_chromium(report_html, tmp_path):
    """In headless Chromium: do the two answers sit side by side with marks, and does no student script run?"""
    probe = ("<script>addEventListener('load', () => { const d = document.querySelector('details.pair');"
             " d.open = true; const [a, b] = d.querySelectorAll('pre');"
             " const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();"
             " document.body.dataset.side = String(ra.right <= rb.left && ra.width > 200 && Math.abs(ra.top - rb.top) < 2);"
             " document.body.dataset.marks = d.querySelectorAll('mark').length; });</script>")
    dom = chromium_dom(report_html, probe, tmp_path, "--window-size=1280,900")
    assert 'data-side="true"' in dom, dom[-800:]
    assert "data-pwned" not in dom
    marks = int(dom.split('data-marks="')[1].split('"')[0])
    assert marks >= 2
