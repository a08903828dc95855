"""Do the hidden tests of stage 03-tradeoffs tell right answers from wrong ones?

Fast and in-process: the answer cells of the master notebook are executed with
the solution, blanked, or with one region replaced by an entry of
tests/corpus/tradeoffs.py, then probed and judged across 20 grading seeds, with
the JSON round trips that `sgdkit grade` makes between kernel and grader.
"""
import re
from pathlib import Path

import nbformat
import pytest

from checks import tradeoffs
from corpus.tradeoffs import ALTERNATIVES, BLANK, MUTANTS, QUESTIONS
from mutation import inprocess
from notebook_env import answer_cells, run_answers

NOTEBOOK = Path(__file__).parents[1] / "solutions" / "03-tradeoffs" / "tradeoffs.ipynb"
SEEDS = range(20)
IMPORTS = "import math, random, time"  # the notebook's own imports the answers may use
ANSWER_CELLS = answer_cells(NOTEBOOK)


def notebook_env(solutions=None):
    """The globals after running every answer cell, with `solutions` {function: text} typed in."""
    return run_answers(IMPORTS, ANSWER_CELLS, solutions, env={})


graded = inprocess.judged  # {part: None or failure}, inputs and probe data through JSON as in `sgdkit grade`


def outcome(verdicts):
    failed = [part for part, failure in verdicts.items() if failure is not None]
    return "full" if not failed else "zero" if len(failed) == len(verdicts) else "partial"


def test_questions_match_the_notebook():
    """Does every hidden test cell of the notebook check a part declared in QUESTIONS, and every part have one?"""
    source = "\n".join(cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells)
    checked = set(re.findall(r'check\("(\w+)", "(\w+)", env\)', source))
    declared = {(q, part) for q, parts in tradeoffs.QUESTIONS.items() for part in parts}
    assert checked == declared
    assert set(QUESTIONS) == set(tradeoffs.QUESTIONS) == set(ANSWER_CELLS)


@pytest.mark.parametrize("seed", SEEDS)
def test_solution_passes_every_part(seed):
    """Does the reference solution pass every hidden part, whatever the seed?"""
    env = notebook_env()
    for question in QUESTIONS:
        assert graded(question, env, seed) == dict.fromkeys(tradeoffs.QUESTIONS[question])


@pytest.mark.parametrize("seed", SEEDS)
def test_blank_fails_every_part(seed):
    """Does the blank student version fail every hidden part, so it scores 0?"""
    env = notebook_env(BLANK["solutions"])
    for question in QUESTIONS:
        verdicts = graded(question, env, seed)
        assert all(failure is not None for failure in verdicts.values()), verdicts
        assert outcome(verdicts) == BLANK["expected"][question]


def test_missing_function_fails_every_part():
    """Does a notebook without the function (renamed, deleted) fail every part instead of crashing?"""
    for question in QUESTIONS:
        assert outcome(graded(question, {}, 0)) == "zero"


@pytest.mark.parametrize("entry", MUTANTS + ALTERNATIVES, ids=lambda entry: entry["name"])
def test_corpus_entry(entry):
    """Does each planted bug fail exactly its recorded parts, and each alternative pass, for 20 seeds?"""
    env = notebook_env({entry["function"]: entry["solution"]})
    for seed in SEEDS:
        for question in QUESTIONS:
            verdicts = graded(question, env, seed)
            assert outcome(verdicts) == entry["expected"][question], (seed, question, verdicts)
            if question == entry["question"]:
                failed = sorted(part for part, failure in verdicts.items() if failure is not None)
                assert failed == entry["failing"], (seed, verdicts)


def test_corpus_is_big_enough():
    """Does the corpus hold at least 6 bugs and 3 alternatives, each question with both?"""
    assert len(MUTANTS) >= 6 and len(ALTERNATIVES) >= 3
    for question in QUESTIONS:
        assert any(entry["question"] == question for entry in MUTANTS)
        assert any(entry["question"] == question for entry in ALTERNATIVES)


@pytest.mark.parametrize("data", [{}, None, {"first": "x"}, {part: [7] * 20 for part in ("first", "one", "strict", "never")}])
def test_malformed_probe_data_fails_not_crashes(data):
    """Does the judge fail every part of garbage probe data, rather than crash or pass it?"""
    inputs = tradeoffs.make_inputs("first_epoch_below", 0)
    assert outcome(tradeoffs.judge("first_epoch_below", inputs, data)) == "zero"
