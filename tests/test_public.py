"""Do the public tests (0 points, what `grader.check` runs) pass on the solution and name the common mistakes?

In process, no otter and no kernels: a master notebook's answer cells run with
the solution, blanked, or with one entry of tests/corpus/<stage>.py typed in
(notebook_env), then every public test cell of that master is called the way
otter calls it, with its arguments taken from the notebook's globals.
`sgdkit build` runs the same public tests on the solution through the real
grader; this file also checks what they say to a student who got it wrong.
"""
import contextlib
import inspect
import re

import match
import nbformat
import pytest

from corpus import descent, losses, tradeoffs
from notebook_env import answer_cells, code_cells, run_answers
from sgdkit import SOLUTIONS

CORPORA = {"01-losses": losses, "02-descent": descent, "03-tradeoffs": tradeoffs}
MASTERS = {stage: next((SOLUTIONS / stage).glob("*.ipynb")) for stage in CORPORA}

# The common mistakes of each question (docs/authoring.md lists them): a corpus
# entry, and words the message of a failing public test of its question must say.
NAMED = {
    "mean_integer_division": ["//"],
    "mean_divides_by_nrow": ["nrow only"],
    "mean_missing_parentheses": ["parentheses"],
    "mean_forgets_return": ["return"],
    "mean_of_first_row": ["every row"],
    "mean_divides_in_place": ["leave x alone"],
    "abs_returns_list": ["List2D"],
    "abs_mutates_self": ["x itself"],
    "abs_clips_negatives_like_relu": ["ReLU"],
    "abs_swaps_loops": ["swap rows and columns"],
    "mean_grad_assigns": ["self.grad +="],
    "mean_grad_ignores_upstream": ["upstream gradient"],
    "mean_grad_not_divided": ["divide the upstream gradient"],
    "mean_grad_divides_by_nrow": ["not by nrow"],
    "abs_grad_assigns": ["self.grad +="],
    "abs_grad_ignores_upstream": ["upstream gradient"],
    "abs_grad_sign_flipped": ["signs are flipped"],
    "abs_grad_positive_branch_only": ["negative entries got 0"],
    "abs_grad_divides_by_abs": ["divides by zero"],
    "mse_missing_square": ["square each difference"],
    "mse_sum_not_mean": ["SUM"],
    "mse_forgets_return": ["return"],
    "mse_returns_float": [".item()"],
    "mse_from_raw_numbers": ["Matrix operations"],
    "mae_without_abs": ["absolute value of each"],
    "mae_squared": ["SQUARED"],
    "mae_abs_of_the_mean": ["absolute value of each"],
    "split_not_shuffled": ["shuffle"],
    "split_uses_global_random": ["random module"],
    "split_parts_overlap": ["exactly one part"],
    "split_truncates_and_loses_rows": ["rounds each part down"],
    "split_shuffles_x_and_y_apart": ["own y row"],
    "split_truncation_piles_up_in_last_part": ["last part"],
    "standardize_all_data_stats": ["TRAINING"],
    "standardize_each_with_own_stats": ["its own"],
    "standardize_mutates_its_inputs": ["must not change"],
    "standardize_scales_y_too": ["y unchanged"],
    "standardize_only_centers": ["standard deviation too"],
    "standardize_returns_only_the_others": ["train first"],
    "bgd_updates_per_example": ["one update per epoch"],
    "bgd_sums_example_gradients": ["SUM"],
    "bgd_forgets_zero_grad": ["model.zero_grad()"],
    "bgd_adds_the_gradient": ["uphill"],
    "bgd_records_loss_after_update": ["before"],
    "bgd_trains_on_validation": ["validation"],
    "bgd_one_epoch_too_many": ["num_epochs"],
    "bgd_ignores_learning_rate": ["learning_rate"],
    "sgd_never_shuffles": ["same order"],
    "sgd_shuffles_once": ["same order"],
    "sgd_uses_global_random": ["random module"],
    "sgd_reseeds_its_own_rng": ["rng you are given"],
    "sgd_validates_every_update": ["once per epoch"],
    "sgd_validates_before_the_epoch": ["before"],
    "sgd_forgets_zero_grad": ["model.zero_grad()"],
    "sgd_samples_with_replacement": ["exactly once"],
    "sgd_returns_loss_matrices": ["floats"],
    "mb_drops_the_last_batch": ["left over"],
    "mb_sums_instead_of_averaging": ["SUM"],
    "mb_shuffles_once": ["same order"],
    "mb_reorders_fixed_batches": ["same examples"],
    "mb_forgets_zero_grad": ["model.zero_grad()"],
    "mb_updates_once_per_epoch": ["one update per batch"],
    "mb_one_epoch_too_few": ["num_epochs"],
    "mb_ignores_batch_size": ["batch_size"],
    "floor": ["left over"],
    "true_division": ["whole number"],
    "always_plus_one": ["divides"],
    "round": ["left over"],
    "drops_last_batch": ["left over"],
    "swapped_arguments": ["swap"],
    "loop_stops_early": ["last batch is missing"],
    "zero_based": ["counted from 1"],
    "less_or_equal": ["<="],
    "last_not_first": ["FIRST"],
    "epoch_of_minimum": ["FIRST"],
    "returns_the_loss": ["the loss itself"],
    "zero_for_never": ["None, not 0"],
    "greater_than": ["above"],
    "pops_the_losses": ["changed its losses"],
}
ENTRIES = {e["name"]: (stage, e) for stage, corpus in CORPORA.items() for e in corpus.MUTANTS + corpus.ALTERNATIVES}


def public_tests(master):
    """{question: [(test name, function)]}: the public test cells of a master, in order."""
    found, question, in_tests = {}, None, False
    for cell in nbformat.read(master, as_version=4).cells:
        if cell.cell_type == "raw":
            begin = re.match(r"#\s*BEGIN QUESTION\s*\nname:\s*(\S+)", cell.source)
            question = begin.group(1) if begin else question
            in_tests = cell.source.strip().startswith("# BEGIN TESTS") or (
                in_tests and not cell.source.strip().startswith("# END TESTS"))
        elif in_tests and cell.cell_type == "code" and not re.search(r"^hidden:\s*true", cell.source, re.M):
            namespace = {}
            exec(cell.source, namespace)
            found.setdefault(question, []).extend(
                (name, value) for name, value in namespace.items() if name.startswith("test_"))
    return found


PUBLIC = {stage: public_tests(master) for stage, master in MASTERS.items()}


def call(test, env):
    """None if the test passes on `env`, else its message, as otter fills in its arguments."""
    params = inspect.signature(test).parameters
    try:
        test(**{name: env if name == "env" else env.get(name) for name in params})
    except AssertionError as error:
        return str(error) or "AssertionError"
    except Exception as error:  # otter reports it as a failure too
        return f"{type(error).__name__}: {error}"
    return None


@contextlib.contextmanager
def notebook(stage, answers=None):
    """The notebook's globals after its answer cells ran with `answers` {function: text} typed in.

    Stage 01's cells set methods on the shared `match` classes: they are put back afterwards.
    """
    saved = {cls: dict(vars(cls)) for cls in (match.List2D, match.Matrix)}
    corpus, master = CORPORA[stage], MASTERS[stage]
    functions = getattr(corpus, "FUNCTIONS", None) or {e["function"] for e in corpus.MUTANTS}
    cells = {name: source for name, source in answer_cells(master).items() if name in functions}
    try:
        yield run_answers(code_cells(master)[0], cells, answers)
    finally:
        for cls, attributes in saved.items():
            for name in set(vars(cls)) - set(attributes):
                delattr(cls, name)
            for name, value in attributes.items():
                if vars(cls).get(name) is not value and name not in ("__dict__", "__weakref__"):
                    setattr(cls, name, value)


def failures(stage, env, questions=None):
    """{question: {test name: message}} of the public tests that fail on `env`."""
    found = {}
    for question, tests in PUBLIC[stage].items():
        if questions is None or question in questions:
            messages = {name: call(test, env) for name, test in tests}
            found[question] = {name: message for name, message in messages.items() if message}
    return {question: failed for question, failed in found.items() if failed}


@pytest.mark.parametrize("stage", CORPORA)
def test_every_question_has_public_tests(stage):
    """Does every autograded question of the stage have at least one public test?"""
    assert sorted(PUBLIC[stage]) == sorted(CORPORA[stage].QUESTIONS)


@pytest.mark.parametrize("stage", CORPORA)
def test_solution_passes_every_public_test(stage):
    """Does the reference solution pass every public test of its stage?"""
    with notebook(stage) as env:
        assert failures(stage, env) == {}


@pytest.mark.parametrize("stage", CORPORA)
def test_blank_fails_a_public_test_of_every_question(stage):
    """Does `grader.check` tell a student who has not answered yet that something is missing?"""
    with notebook(stage, CORPORA[stage].BLANK["solutions"]) as env:
        assert sorted(failures(stage, env)) == sorted(CORPORA[stage].QUESTIONS)


@pytest.mark.parametrize("name", [e["name"] for c in CORPORA.values() for e in c.ALTERNATIVES])
def test_valid_alternatives_pass(name):
    """Does every valid alternative answer of the corpus pass every public test?"""
    stage, entry = ENTRIES[name]
    with notebook(stage, {entry["function"]: entry["solution"]}) as env:
        assert failures(stage, env) == {}


@pytest.mark.parametrize("name", NAMED)
def test_common_mistakes_are_named(name):
    """Does a public test of the question fail on this common mistake, with a message that names it?"""
    stage, entry = ENTRIES[name]
    with notebook(stage, {entry["function"]: entry["solution"]}) as env:
        failed = failures(stage, env, [entry["question"]]).get(entry["question"], {})
    assert failed, f"{name}: every public test of {entry['question']} passes"
    assert any(all(word in message for word in NAMED[name]) for message in failed.values()), (
        f"{name}: no message says {NAMED[name]}:\n" + "\n".join(f"{t}: {m}" for t, m in failed.items()))
