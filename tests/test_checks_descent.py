"""Do the hidden tests of stage 02-descent tell right loops from ones that only look right?

Fast and in-process: the answer cells of the master notebook are executed with
the solution, blanked, or with one region replaced by an entry of
tests/corpus/descent.py, then probed and judged with the JSON round trips that
`sgdkit grade` makes between kernel and grader.
"""
import json
import re
import textwrap
from pathlib import Path

import nbformat
import pytest

import checks
from checks import descent
from corpus.descent import ALL_PARTS, ALTERNATIVES, BLANK, FUNCTIONS, MUTANTS, QUESTIONS
from mutation import inprocess
from notebook_env import answer_cells, code_cells, region_texts, run_answers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solutions" / "02-descent" / "descent.ipynb"
LIBRARY = ROOT / "solutions" / "match" / "training.py"
SEEDS = range(20)
CELLS = nbformat.read(NOTEBOOK, as_version=4).cells
IMPORTS = code_cells(NOTEBOOK)[0]
ANSWER_CELLS = {name: source for name, source in answer_cells(NOTEBOOK).items() if name in FUNCTIONS}


def _defines(source):
    return re.findall(r"^def (\w+)\(", source, re.M)


def notebook_env(solutions=None):
    """The globals after the imports cell and every answer cell, with `solutions` typed in."""
    return run_answers(IMPORTS, ANSWER_CELLS, solutions)


graded = inprocess.judged  # {part: None or failure}, inputs and probe data through JSON as in `sgdkit grade`


def failing(question, env, seed=0):
    return sorted(part for part, failure in graded(question, env, seed).items() if failure is not None)


def outcome(question, failed):
    return "full" if not failed else "zero" if set(failed) == set(descent.QUESTIONS[question]) else "partial"


def test_questions_match_the_notebook_and_corpus():
    """Does every hidden test cell check a part declared in QUESTIONS, and every part have one?"""
    source = "\n".join(cell.source for cell in CELLS)
    checked = set(re.findall(r'check\("(\w+)", "(\w+)", env\)', source))
    declared = {(q, part) for q, parts in descent.QUESTIONS.items() for part in parts}
    assert checked == declared
    assert list(descent.QUESTIONS) == QUESTIONS
    assert {q: set(parts) for q, parts in descent.QUESTIONS.items()} == ALL_PARTS
    assert set(ANSWER_CELLS) == set(FUNCTIONS)


def test_solution_regions_match_the_library():
    """Is each function's solution region the text of its exercise block in match/training.py?"""
    library = {}
    for chunk in re.split(r"(?m)^(?=def )", LIBRARY.read_text()):
        block = re.search(r"^ *# BEGIN EXERCISE (\w+)\n(.*?)^ *# END EXERCISE", chunk, re.M | re.S)
        if block:
            library[_defines(chunk)[0]] = (block.group(1), textwrap.dedent(block.group(2)))
    notebook = {name: text for name, text in region_texts(NOTEBOOK).items() if name in FUNCTIONS}
    assert library == {name: (FUNCTIONS[name], text) for name, text in notebook.items()}


def test_solution_passes_every_part():
    """Does the master notebook's solution pass every hidden part?"""
    env = notebook_env()
    for question in QUESTIONS:
        assert graded(question, env) == dict.fromkeys(descent.QUESTIONS[question])


def test_blank_fails_every_hidden_part():
    """Does the blank student version (every answer `...`) fail every hidden part?"""
    env = notebook_env(BLANK["solutions"])
    result = {q: failing(q, env) for q in QUESTIONS}
    assert result == {q: sorted(parts) for q, parts in ALL_PARTS.items()}
    assert {q: outcome(q, result[q]) for q in QUESTIONS} == BLANK["expected"]


def _public_tests():
    """(name, function) of every public (0-point) test cell, as otter would define them."""
    found = []
    for cell in CELLS:
        if cell.cell_type == "code" and "points: 0" in cell.source:
            namespace = {}
            exec(cell.source, namespace)
            found += [(name, fn) for name, fn in namespace.items() if name.startswith("test_")]
    return found


def _call(test, env):
    """Call a test function the way otter does: each parameter is looked up in env."""
    names = test.__code__.co_varnames[: test.__code__.co_argcount]
    test(**{name: env if name == "env" else env.get(name) for name in names})


def test_public_tests_pass_the_solution_and_fail_the_blank():
    """Do the teaching tests pass with the solution and fail, with a message, on every blank answer?"""
    tests = _public_tests()
    assert len(tests) >= 5  # tests/test_public.py checks each public test in detail
    solution, blank = notebook_env(), notebook_env(BLANK["solutions"])
    for name, test in tests:
        _call(test, solution)
        with pytest.raises(Exception):
            _call(test, blank)


@pytest.mark.parametrize("entry", MUTANTS, ids=lambda e: e["name"])
def test_mutant_fails_only_its_own_parts(entry):
    """Does each planted bug fail exactly its recorded parts, and nothing in other questions?"""
    env = notebook_env({entry["function"]: entry["solution"]})
    result = {q: failing(q, env) for q in QUESTIONS}
    assert result == {q: entry["failing"] if q == entry["question"] else [] for q in QUESTIONS}
    assert {q: outcome(q, result[q]) for q in QUESTIONS} == entry["expected"]


@pytest.mark.parametrize("entry", ALTERNATIVES, ids=lambda e: e["name"])
def test_alternative_passes_everything(entry):
    """Does each valid alternative answer get full marks in every question, and pass the teaching tests?"""
    env = notebook_env({entry["function"]: entry["solution"]})
    for question in QUESTIONS:
        assert graded(question, env) == dict.fromkeys(descent.QUESTIONS[question]), question
    for name, test in _public_tests():
        _call(test, env)


def test_a_loop_built_on_a_buggy_sibling_gets_that_sibling():
    """When SGD and batch GD call a buggy minibatch_sgd, do they get what that sibling does (no stand-in)?

    The loops build on none of each other (CONTRACT.md section 2), so no correct
    loop may stand in for the sibling a loop calls. Summing instead of averaging
    changes nothing for batches of one, so SGD built that way still passes.
    """
    entries = {e["name"]: e for e in MUTANTS + ALTERNATIVES}
    chosen = ["sgd_as_minibatch_of_one", "bgd_as_one_big_minibatch", "mb_sums_instead_of_averaging"]
    env = notebook_env({entries[name]["function"]: entries[name]["solution"] for name in chosen})
    result = {q: failing(q, env) for q in QUESTIONS}
    bug = entries[chosen[2]]["failing"]
    assert result == {"prepare": [], "batch_gd": bug, "sgd": [], "minibatch_sgd": bug}


def test_corpus_size():
    """Does the corpus hold at least 18 bugs and 6 valid alternatives, with unique names?"""
    names = [e["name"] for e in MUTANTS + ALTERNATIVES]
    assert len(MUTANTS) >= 18 and len(ALTERNATIVES) >= 6
    assert len(names) == len(set(names))


# (question, answers typed in, parts it must fail): the solution, the blank and every corpus entry.
SEED_CASES = ([(f"solution-{q}", q, {}, []) for q in QUESTIONS]
              + [(f"blank-{q}", q, BLANK["solutions"], sorted(ALL_PARTS[q])) for q in QUESTIONS]
              + [(e["name"], e["question"], {e["function"]: e["solution"]}, e["failing"])
                 for e in MUTANTS + ALTERNATIVES])


@pytest.mark.parametrize("question, solutions, want", [case[1:] for case in SEED_CASES],
                         ids=[case[0] for case in SEED_CASES])
def test_verdicts_do_not_depend_on_the_seed(question, solutions, want):
    """Do 20 grading seeds give the same verdicts for the solution, the blank and every corpus entry?

    Other questions are graded with the solution (or stand-ins), so an entry's
    own question is where a seed could matter. One case per test, so that a
    failure names its entry.
    """
    env = notebook_env(solutions)
    for seed in SEEDS:
        assert failing(question, env, seed) == want, (question, list(solutions), seed)


def test_strange_answers_are_failures_not_crashes():
    """Do odd return values and exceptions from student code become failing verdicts?"""
    strange = {
        "split_dataset": "return 42",
        "standardize": "raise SystemError('boom' * 1000)",
        "batch_gradient_descent": "return [float('nan')], None",
        "stochastic_gradient_descent": "model.parameters()[0].data = List2D(1, 1, float('inf'))\nreturn [], []",
        "minibatch_sgd": "return 'train_losses', 'valid_losses'",
    }
    env = notebook_env(strange)
    for question in QUESTIONS:
        assert failing(question, env) == sorted(ALL_PARTS[question])


def test_probe_restores_the_notebook():
    """After probing, are the student's own functions and the global random state back?"""
    import random

    env = notebook_env({"stochastic_gradient_descent": ALTERNATIVES[5]["solution"]})
    before = {name: env[name] for name in FUNCTIONS}
    random.seed(123)
    state = random.getstate()
    for question in QUESTIONS:
        checks.probe(question, env, descent.make_inputs(question, 0))
    assert {name: env[name] for name in FUNCTIONS} == before
    assert random.getstate() == state


def test_inputs_are_json_and_seeded():
    """Are the inputs plain JSON, the same for the same seed and different for another?"""
    for question in QUESTIONS:
        inputs = descent.make_inputs(question, 3)
        assert json.loads(json.dumps(inputs, allow_nan=False)) == inputs
        assert descent.make_inputs(question, 3) == inputs
        assert descent.make_inputs(question, 4) != inputs
