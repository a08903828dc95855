"""Does nothing that knows an answer reach the student's kernel, and does an unfinished run score nothing?

Fast: these read the job the parent sends to the sandbox and the status rules,
without kernels. tests/test_attacks.py grades the attacks for real.
"""
import json
import re

import pytest

import checks
from sgdkit.scoring import Reported, Run, judge_run
from sgdkit.stage import load_stage, public_only

STAGES = list(checks.STAGES)
# Text that only the grader's hidden code holds: judges, inputs, expected values, reference loops.
HIDDEN = ["def judge", "def make_inputs", "def expected", "def _descend", "numerical_gradient", "rel_error",
          "import numpy", "hidden=True", "_converge_threshold", "PREREQUISITES"]


@pytest.fixture(scope="module")
def stages(built_kit):
    return {stage: load_stage(stage, built_kit) for stage in STAGES}


@pytest.mark.parametrize("stage", STAGES)
def test_probe_job_holds_no_answer(stages, stage):
    """Does what the kernel gets (probe package, stand-ins, public tests) hold no judge, input maker or reference?"""
    spec = stages[stage]
    inputs = {q: spec.module.make_inputs(q, 7) for q in spec.questions}
    sent = json.dumps({"files": spec.probe_files(), "probes": spec.probes(inputs),
                       "public": {q: spec.public_source(q) for q in spec.questions}})
    assert [marker for marker in HIDDEN if marker in sent] == []
    assert set(spec.probe_files()) == {"__init__.py", "common.py", f"{spec.probe_module}.py"}


@pytest.mark.parametrize("stage", STAGES)
def test_stand_ins_only_for_prerequisites_already_probed(stages, stage):
    """Does each probe carry stand-ins for its own prerequisites only, each probed before it?"""
    spec = stages[stage]
    steps = spec.probes({q: {} for q in spec.questions})
    assert sorted(step["question"] for step in steps) == sorted(spec.questions)
    probed = []
    for step in steps:
        assert set(step["stand_ins"]) == set(checks.prerequisites(step["question"]))
        assert set(step["stand_ins"]) <= set(probed), (step["question"], probed)
        probed.append(step["question"])


def test_prerequisites_follow_the_contract():
    """Is losses built on the Matrix answers, those on the List2D ones, and the loops on nothing?"""
    assert checks.prerequisites("losses") == ["list2d_mean", "matrix_mean", "list2d_abs", "matrix_abs"]
    assert checks.prerequisites("matrix_abs") == ["list2d_abs"]
    for question in ("batch_gd", "sgd", "minibatch_sgd", "prepare", "updates_per_epoch", "first_epoch_below"):
        assert checks.prerequisites(question) == []
    assert checks.probe_order(["losses", "matrix_mean", "list2d_mean"]) == ["list2d_mean", "matrix_mean", "losses"]


def test_public_only_drops_hidden_cases():
    """Are test cases marked hidden=True cut out of a test file, and public ones kept?"""
    source = ('from otter.test_files import test_case\nOK_FORMAT = False\n\n'
              '@test_case(points=0, hidden=False)\ndef test_public(env):\n    assert 1\n\n'
              '@test_case(points=2, hidden=True)\ndef test_secret(env):\n    check("q", "p", env)\n')
    kept = public_only(source)
    assert "test_public" in kept and "test_secret" not in kept and "check(" not in kept
    # Plain Python, for a kernel without otter: no import of it, no decorator; PUBLIC_TESTS names the cases.
    assert "otter" not in kept and "@" not in kept
    names: dict = {}
    exec(kept, names)
    assert names["PUBLIC_TESTS"] == ["test_public"] and callable(names["test_public"])


def test_check_ignores_the_notebooks_verdicts():
    """Does `check` ignore verdicts planted in the notebook's namespace (the one-line Gradescope trick)?"""
    from collections import defaultdict

    env = {"__sgdkit_verdicts__": defaultdict(lambda: defaultdict(lambda: None))}
    with pytest.raises((AssertionError, KeyError)):  # the blank env has no List2D: the probe fails the part
        checks.check("list2d_mean", "value", env)
    with checks.judged({"list2d_mean": {"value": None}}):
        checks.check("list2d_mean", "value", {})
    with checks.judged({"list2d_mean": {"value": "wrong"}}), pytest.raises(AssertionError):
        checks.check("list2d_mean", "value", {})


def test_judges_never_pass_non_finite_numbers():
    """Is the relative error of nan or inf infinite, so that no tolerance passes it?"""
    from checks.common import rel_error

    for bad in (float("nan"), float("inf"), -float("inf")):
        assert rel_error([[bad]], [[1.0]]) == float("inf") and rel_error([[1.0]], [[bad]]) == float("inf")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999", "[1, -1e400]"])
def test_probe_json_refuses_non_finite(tmp_path, text):
    """Does the sandbox refuse a probe answer holding NaN, Infinity or a float too large to be finite?"""
    from sgdkit.sandbox import read_json

    path = tmp_path / "answer.json"
    path.write_text(json.dumps({"value": "x"})[:-1] + f', "n": {text}}}')
    with pytest.raises(ValueError):
        read_json(str(path))


# ---------------------------------------------------------------- unfinished runs, from made-up events


def _events(stage, *, probed=None, fingerprints=True, done=True):
    """The events of a run whose notebook finished, with some steps after it missing."""
    events = [{"event": "notebook", "state": "done", "seconds": 1.0}]
    for question in stage.questions if probed is None else probed:
        events.append({"event": "probe", "question": question, "data": {}})
    if fingerprints:
        events.append({"event": "fingerprints", "values": {}})
    if done:
        events.append({"event": "done"})
    return events


@pytest.mark.parametrize("missing", ["a probe", "the tamper check", "the end"])
def test_an_unfinished_run_scores_nothing(stages, missing):
    """When a step after the notebook never reported, is the status crashed and every question 0?"""
    spec = stages["03-tradeoffs"]
    events = {"a probe": _events(spec, probed=spec.questions[:1]),
              "the tamper check": _events(spec, fingerprints=False),
              "the end": _events(spec, done=False)}[missing]
    assert Reported.from_events(events).unfinished(spec.questions)
    result = judge_run(spec, Run(events=events), {q: spec.module.make_inputs(q, 0) for q in spec.questions}, {}, [])
    assert result["status"] == "crashed" and result["detail"] and result["total"] == 0
    assert all(re.search("not scored", d) for q in result["questions"].values() for d in q["details"].values())
