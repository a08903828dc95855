"""Stage 01-losses hidden-test logic, in process: no otter, no kernels.

The "student" is the master notebook's answer cells, run against the reference
library with some solution regions replaced (tests/corpus/losses.py).
"""
import json
import re
import textwrap
from pathlib import Path

import pytest
import checks
from checks import losses
from corpus import losses as corpus
from mutation import inprocess
from notebook_env import answer_cells, code_cells, region_texts
from sgdkit.answers import edit

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solutions" / "01-losses" / "losses.ipynb"
SEEDS = range(20)

CODE = code_cells(NOTEBOOK)


def student(solutions=None, edits=None):
    """The notebook's globals after running it with `solutions` in some regions; the `match` classes put back after."""
    return inprocess.student("01-losses", solutions, edits)


def answered(entry):
    """student() with a corpus entry typed in."""
    return student({entry["function"]: entry["solution"]}, entry["edits"])


def verdicts(env, question, seed=0):
    """Probe, send the data through JSON as the grader does, then judge."""
    inputs = losses.make_inputs(question, seed)
    data = checks.probe(question, env, json.loads(json.dumps(inputs)))
    wire = json.dumps(data, allow_nan=False)
    assert json.loads(wire) == data
    return losses.judge(question, inputs, json.loads(wire))


def failing(env, seed=0):
    """{question: sorted failing parts} for every question of the stage."""
    return {
        question: sorted(part for part, failure in verdicts(env, question, seed).items() if failure)
        for question in losses.QUESTIONS
    }


def outcome(question, failed):
    if not failed:
        return "full"
    return "zero" if set(failed) == set(losses.QUESTIONS[question]) else "partial"


def expected_failing(entry):
    return {q: entry["failing"] if q == entry["question"] else [] for q in losses.QUESTIONS}


def test_questions_match_the_notebook():
    """Does every hidden test cell call a part that QUESTIONS declares, and every part have a cell?"""
    calls = set()
    for source in CODE:
        calls.update(re.findall(r'check\("(\w+)", "(\w+)", env\)', source))
    declared = {(q, part) for q, parts in losses.QUESTIONS.items() for part in parts}
    assert calls == declared
    assert list(losses.QUESTIONS) == corpus.QUESTIONS


def test_solution_regions_match_the_library():
    """Is each solution region exactly the library's exercise block?"""
    notebook = region_texts(NOTEBOOK)
    library = {}
    for path in (ROOT / "solutions" / "match").glob("*.py"):
        for name, block in re.findall(r"# BEGIN EXERCISE (\w+)\n(.*?)\n\s*# END EXERCISE", path.read_text(), re.S):
            if name in losses.QUESTIONS:
                library[name] = textwrap.dedent(block) + "\n"
    assert set(library) == {"list2d_mean", "list2d_abs", "matrix_mean", "matrix_abs"}
    for name, block in library.items():
        assert notebook[name] == block, name


def test_solution_passes_every_part():
    """Does the master notebook's solution pass every hidden part?"""
    with student() as env:
        assert failing(env) == {q: [] for q in losses.QUESTIONS}


def test_blank_fails_every_hidden_part():
    """Does the blank student version (every answer `...`) fail every hidden part?"""
    with student(corpus.BLANK["solutions"]) as env:
        result = failing(env)
    assert result == {q: sorted(parts) for q, parts in losses.QUESTIONS.items()}
    assert {q: outcome(q, result[q]) for q in result} == corpus.BLANK["expected"]


@pytest.mark.parametrize("entry", corpus.MUTANTS, ids=lambda e: e["name"])
def test_mutant_fails_only_its_own_parts(entry):
    """Does each planted bug fail exactly its recorded parts, and nothing in other questions?"""
    with answered(entry) as env:
        result = failing(env)
    assert result == expected_failing(entry)
    assert {q: outcome(q, result[q]) for q in result} == entry["expected"]


@pytest.mark.parametrize("entry", corpus.ALTERNATIVES, ids=lambda e: e["name"])
def test_alternative_passes_everything(entry):
    """Does each valid alternative answer get full marks?"""
    with answered(entry) as env:
        assert failing(env) == {q: [] for q in losses.QUESTIONS}


def test_edits_change_the_cells_they_name():
    """Does every corpus entry's edit change its function's answer cell (an edit that matched nothing tests nothing)?"""
    cells = answer_cells(NOTEBOOK)
    edited = [e for e in corpus.MUTANTS + corpus.ALTERNATIVES if e["edits"]]
    assert edited
    for entry in edited:
        source = cells[entry["function"]]
        assert edit(source, entry["edits"]) != source, entry["name"]


def test_corpus_size():
    """Does the corpus hold at least 15 bugs and 6 valid alternatives, with unique names?"""
    names = [e["name"] for e in corpus.MUTANTS + corpus.ALTERNATIVES]
    assert len(corpus.MUTANTS) >= 15 and len(corpus.ALTERNATIVES) >= 6
    assert len(names) == len(set(names))


def test_verdicts_do_not_depend_on_the_seed():
    """Do 20 grading seeds give the same verdicts for the solution, the blank and every corpus entry?"""
    for solutions in ({}, corpus.BLANK["solutions"]):
        with student(solutions) as env:
            want = failing(env)
            for seed in SEEDS:
                assert failing(env, seed) == want, (solutions, seed)
    # Other questions are graded with stand-ins, so an entry's own question is where seeds could matter.
    for entry in corpus.MUTANTS + corpus.ALTERNATIVES:
        question = entry["question"]
        with answered(entry) as env:
            for seed in SEEDS:
                failed = sorted(part for part, failure in verdicts(env, question, seed).items() if failure)
                assert failed == entry["failing"], (entry["name"], seed)


def test_strange_answers_are_failures_not_crashes():
    """Do odd return values and exceptions from student code become failing verdicts?"""
    strange = {
        "list2d_mean": 'return float("nan")',
        "list2d_abs": "raise SystemError('boom' * 1000)",
        "matrix_mean": "self.grad = 'not a List2D'",
        "matrix_abs": "self.grad += (self.data > 0) * float('inf')",
        "mse": 'return "2.5"',
        "mae": "return yhat",
    }
    with student(strange) as env:
        result = failing(env)
    assert result == {q: sorted(parts) for q, parts in losses.QUESTIONS.items()}


def test_probe_puts_the_student_answers_back():
    """After probing with stand-ins, are the student's own methods on the classes again?"""
    with student(corpus.BLANK["solutions"]) as env:
        before = {name: env["List2D"].__dict__[name] for name in ("mean", "abs", "__abs__")}
        before.update({"M" + name: env["Matrix"].__dict__[name] for name in ("mean", "abs", "__abs__")})
        for question in losses.QUESTIONS:
            checks.probe(question, env, losses.make_inputs(question, 0))
        after = {name: env["List2D"].__dict__[name] for name in ("mean", "abs", "__abs__")}
        after.update({"M" + name: env["Matrix"].__dict__[name] for name in ("mean", "abs", "__abs__")})
        assert after == before
        assert env["List2D"].mean is env["list2d_mean"]


def test_inputs_are_json_and_seeded():
    """Are the inputs plain JSON, the same for the same seed and different for another?"""
    for question in losses.QUESTIONS:
        inputs = losses.make_inputs(question, 3)
        assert json.loads(json.dumps(inputs, allow_nan=False)) == inputs
        assert losses.make_inputs(question, 3) == inputs
        assert losses.make_inputs(question, 4) != inputs
