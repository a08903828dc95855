"""Hidden-test logic for every stage, shipped in the autograder zips as `sgdkit_checks`.

Each stage module (losses, descent, tradeoffs) holds QUESTIONS, PREREQUISITES,
make_inputs and judge, and never enters the student's kernel. What does enter
it is probes/ (one probe module per stage) and, for a question that builds on
others, standins/ for those prerequisites (see docs/architecture.md). The
master notebooks' hidden test cases all call `check(question, part, env)`.
"""
import contextlib
import importlib
import secrets

from . import descent, losses, tradeoffs

STAGES = {"01-losses": losses, "02-descent": descent, "03-tradeoffs": tradeoffs}

# Verdicts handed in by `sgdkit grade` (in its own process, never the kernel's) while it scores.
_judged = {}
# Verdicts computed in this process by the in-kernel path, so the parts of one question probe once.
_live = {}


def stage_of(question):
    """The stage module that owns `question`."""
    for module in STAGES.values():
        if question in module.QUESTIONS:
            return module
    raise KeyError(f"no stage has a question named {question!r}")


def prerequisites(question):
    """Every question `question` builds on, directly or not, in probing order."""
    direct = stage_of(question).PREREQUISITES[question]
    found = [p for prerequisite in direct for p in prerequisites(prerequisite) + [prerequisite]]
    return list(dict.fromkeys(found))


def probe_order(questions):
    """`questions` reordered so that every prerequisite comes before the questions that build on it."""
    order = [p for q in questions for p in prerequisites(q) + [q]]
    return [q for q in dict.fromkeys(order) if q in questions]


def probe_module(question):
    """The probe module of `question`'s stage (probes/<stage module>.py)."""
    return importlib.import_module(f"{__name__}.probes.{stage_of(question).__name__.rsplit('.', 1)[1]}")


def probe(question, env, inputs):
    """Probe `env` in this process, with the stand-ins the grader would send: the kit's tests use this."""
    stand_ins = [importlib.import_module(f"{__name__}.standins.{p}").PATCHES for p in prerequisites(question)]
    return probe_module(question).probe(question, env, inputs, stand_ins)


def verdicts(question, env, seed):
    """Probe the student's code in `env` and judge it: {part: None or failure}."""
    module = stage_of(question)
    inputs = module.make_inputs(question, seed)
    return module.judge(question, inputs, probe(question, env, inputs))


@contextlib.contextmanager
def judged(given):
    """While scoring in the grader's process: `check` answers from `given` {question: {part: verdict}}."""
    _judged.update(given)
    try:
        yield
    finally:
        _judged.clear()


def check(question, part, env):
    """Raise AssertionError with the part's hint unless `part` of `question` passed.

    `sgdkit grade` and the Gradescope runner judge outside the kernel and hand
    the verdicts in with `judged`. Without them (plain `otter run`, a TA's smoke
    test) the kernel is probed and judged right here, on a fresh seed each run:
    that path runs inside the student's process and is not tamper-proof.
    """
    if question in _judged:
        failure = _judged[question][part]
    else:
        key = (question, id(env))
        if key not in _live:
            _live[key] = verdicts(question, env, secrets.randbits(32))
        failure = _live[key][part]
    if failure is not None:
        raise AssertionError(stage_of(question).QUESTIONS[question][part])
