"""The fast path: a master notebook's answer cells run in this process, some regions replaced, probed and judged.

This is what `sgdkit grade` does without otter, kernels or the sandbox: the
inputs and the probe's data make the same JSON round trips between the
"kernel" and the "grader", and questions are probed with the same stand-ins.
"""
import contextlib
import json
from functools import cache

import match
import checks
from notebook_env import answer_cells, code_cells, run_answers
from sgdkit import SOLUTIONS
from sgdkit.answers import edit, solution_regions


@cache
def master(stage):
    """The master notebook of `stage`."""
    return next((SOLUTIONS / stage).glob("*.ipynb"))


@cache
def graded_regions(stage):
    """{function: (question, solution text)} of the stage's SOLUTION regions that a question grades."""
    return {f: (q, text) for f, (q, text) in solution_regions(master(stage)).items() if q is not None}


def student_env(stage, answers=None, edits=None):
    """The notebook's globals after its imports cell and every graded answer cell, `answers` typed in.

    `edits` {function: [(old, new)]} changes the code around a region (sgdkit.answers.edit).

    A cell that raises leaves what it defines undefined and the next cells
    still run, as in a notebook run to its end.
    """
    cells = {f: edit(source, edits or {}) for f, source in answer_cells(master(stage)).items()
             if f in graded_regions(stage)}
    env = run_answers(code_cells(master(stage))[0], {})
    for source in dict.fromkeys(cells.values()):  # a cell may define two functions
        with contextlib.suppress(Exception):
            run_answers("", {None: source}, answers, env)
    return env


@contextlib.contextmanager
def student(stage, answers=None, edits=None):
    """student_env(stage, answers, edits), with the `match` classes its answer cells patch put back afterwards."""
    saved = {cls: dict(vars(cls)) for cls in (match.List2D, match.Matrix)}
    try:
        yield student_env(stage, answers, edits)
    finally:
        for cls, attributes in saved.items():
            for name in set(vars(cls)) - set(attributes):
                delattr(cls, name)
            for name, value in attributes.items():
                if vars(cls).get(name) is not value:
                    setattr(cls, name, value)


def judged(question, env, seed=0):
    """{part: None or failure} of `question`, inputs and probe data through JSON as `sgdkit grade` sends them."""
    module = checks.stage_of(question)
    inputs = json.loads(json.dumps(module.make_inputs(question, seed)))
    try:
        data = json.loads(json.dumps(checks.probe(question, env, inputs), allow_nan=False))
    except ValueError:  # the sandbox refuses NaN and Infinity: the question gets no data
        return dict.fromkeys(module.QUESTIONS[question], "the probe's data held NaN or Infinity")
    return module.judge(question, inputs, data)


def failing(question, env, seed=0):
    """The sorted parts of `question` that fail."""
    return sorted(part for part, failure in judged(question, env, seed).items() if failure is not None)
