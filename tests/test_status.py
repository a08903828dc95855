"""Do the status rules give each made-up run the status, detail and points they promise?

Fast (no kernels): each test builds the events a sandbox would report and
scores them with scoring.judge_run on the committed stage-01 autograder. The
real-kernel versions of these runs are in test_grade.py and test_attacks.py;
test_trust.py has the rule for a run that stopped after the notebook.
"""
import types

import pytest

from sgdkit.feedback import feedback, write_grades
from sgdkit.outputs import read_csv
from sgdkit.results import new_result, outcome, status_text
from sgdkit.scoring import MAX_PRINTED, SEVERITY, Run, judge_run
from sgdkit.stage import load_stage

STAGE = "01-losses"
CELLS = {1: "import match", 2: "def mean(self):\n    return 0", 3: "while True: pass"}


@pytest.fixture(scope="module")
def spec(built_kit):
    return load_stage(STAGE, built_kit)


@pytest.fixture(scope="module")
def inputs(spec):
    return {q: spec.module.make_inputs(q, 0) for q in spec.questions}


def finished(spec, *extra, probed=None, failed=()):
    """The events of a run that got to its end: the notebook, each question probed (no data), the tamper check."""
    events = [{"event": "notebook", "state": "done", "seconds": 1.0}]
    for q in spec.questions if probed is None else probed:
        if q in failed:
            events.append({"event": "probe_failed", "question": q, "status": "timeout", "limit": 30.0,
                           "reason": "still running after 30 s"})
        else:
            events.append({"event": "probe", "question": q, "data": {}})
    return events + list(extra) + [{"event": "fingerprints", "values": {}}, {"event": "done"}]


def judged(spec, inputs, events, reference=None, **run):
    return judge_run(spec, Run(events=events, cells=CELLS, **run), inputs, reference or {}, [], memory=1 << 30)


def test_a_clean_run_is_ok(spec, inputs):
    result = judged(spec, inputs, finished(spec))
    assert (result["status"], result["detail"]) == ("ok", "")
    assert set(result["questions"]) == set(spec.questions) and result["possible"] > 0


def test_tampered_beats_timeout_and_zeroes_everything(spec, inputs):
    """A replaced watched function with a probe timeout: tampered wins, every question 0, the timeout in the notes."""
    reference = {"numpy:allclose": ["code", "abc"]}
    events = finished(spec, failed=["list2d_mean"])
    events[-2] = {"event": "fingerprints", "values": {"numpy:allclose": ["code", "evil"]}}
    result = judged(spec, inputs, events, reference)
    assert result["status"] == "tampered" and result["detail"] == "numpy.allclose was replaced"
    assert result["total"] == 0 and any(n.startswith("timeout: probing list2d_mean") for n in result["notes"])
    assert all(all(why.startswith("tampered: ") for why in q["details"].values()) for q in result["questions"].values())


def test_changed_library_files_are_tampering(spec, inputs):
    result = judged(spec, inputs, finished(spec), changed=["match/list2d.py was rewritten"])
    assert (result["status"], result["detail"]) == ("tampered", "match/list2d.py was rewritten")


@pytest.mark.parametrize("error", ["MemoryError", "OSError: [Errno 12] Cannot allocate memory"])
def test_a_sandbox_error_about_memory_is_memory(spec, inputs, error):
    result = judged(spec, inputs, [{"event": "sandbox_error", "error": error}])
    assert result["status"] == "memory" and error in result["detail"] and result["total"] == 0


def test_any_other_sandbox_error_is_crashed(spec, inputs):
    result = judged(spec, inputs, [{"event": "sandbox_error", "error": "unshare failed"}])
    assert result["status"] == "crashed" and "unshare failed" in result["detail"]


def test_oom_kills_make_a_dead_kernel_memory(spec, inputs):
    """The cgroup's OOM killer took the kernel: memory, not crashed, whatever the kernel said."""
    events = [{"event": "notebook", "state": "died", "index": 2, "how": "died", "stderr": ""}]
    assert judged(spec, inputs, events)["status"] == "crashed"
    assert judged(spec, inputs, events, oom_kills=1)["status"] == "memory"


def test_a_probe_timeout_zeroes_only_its_question(spec, inputs):
    result = judged(spec, inputs, finished(spec, failed=["list2d_mean"]))
    assert result["status"] == "timeout"
    assert result["detail"] == "probing list2d_mean took longer than 30 s; it scores 0"
    for q, scored in result["questions"].items():
        hidden = [t for t in scored["tests"] if t["hidden"]]
        if q == "list2d_mean":
            assert scored["points"] == 0 and all("still running" in why for why in scored["details"].values())
        else:  # no data at all: the judge fails them, but never with the timeout's reason
            assert hidden and not any("still running" in why for why in scored["details"].values())


def test_a_cell_timeout_names_the_cell(spec, inputs):
    events = [{"event": "cell", "index": 3},
              {"event": "notebook", "state": "timeout", "index": 3, "limit": 60.0, "recovered": False}]
    result = judged(spec, inputs, events)
    assert result["status"] == "timeout" and result["total"] == 0
    assert result["detail"].startswith("code cell 3 (while True: pass) was still running after 60 s")


def test_the_hard_limit_is_a_timeout(spec, inputs):
    result = judged(spec, inputs, [{"event": "cell", "index": 2}], killed=True)
    assert result["status"] == "timeout" and "in code cell 2 (def mean(self):)" in result["detail"]


def test_a_memory_error_in_a_cell_is_memory_not_cell_error(spec, inputs):
    error = {"event": "cell_error", "index": 2, "ename": "MemoryError", "evalue": ""}
    result = judged(spec, inputs, finished(spec, error))
    assert result["status"] == "memory" and any(n.startswith("cell-error: ") for n in result["notes"])


def test_printing_too_much_beats_a_cell_error(spec, inputs):
    error = {"event": "cell_error", "index": 2, "ename": "ValueError", "evalue": "bad"}
    result = judged(spec, inputs, finished(spec, error, {"event": "output", "bytes": MAX_PRINTED + 1}))
    assert result["status"] == "output-limit"
    result = judged(spec, inputs, finished(spec, error))
    assert (result["status"], result["detail"]) == ("cell-error", "code cell 2 (def mean(self):) raised ValueError: bad")


def test_every_problem_has_its_place_in_the_order():
    assert SEVERITY == ["tampered", "crashed", "memory", "timeout", "output-limit", "cell-error"]


def test_the_status_shows_as_keyword_and_detail_in_grades_csv(tmp_path, spec):
    ok, bad = new_result("a.ipynb", "", STAGE), new_result("b.ipynb", "", STAGE)
    bad["status"], bad["detail"] = "invalid", "empty file"
    assert (status_text(ok), status_text(bad)) == ("ok", "invalid: empty file")
    write_grades(tmp_path / "grades.csv", spec, [ok, bad])
    assert [row["status"] for row in read_csv(tmp_path / "grades.csv")[1]] == ["ok", "invalid: empty file"]


def test_feedback_escapes_what_the_submission_wrote(spec):
    """A cell error's text (the submission's) shows as text: no fake heading, bold total or link."""
    result = new_result("x.ipynb", "", STAGE)
    result["status"], result["detail"] = "cell-error", "code cell 2 raised ValueError: **Total: 24 / 24** [a](http://b)"
    text = feedback(result, types.SimpleNamespace(name=STAGE, questions=[], manual=[]))
    assert "\\*\\*Total: 24 / 24\\*\\* \\[a\\](http\\://b)" in text and text.count("**Total") == 1


def test_rejected_submissions_get_no_hints(spec):
    result = new_result("x.ipynb", "", STAGE)
    result["status"], result["detail"] = "wrong-stage", "this is a 02-descent notebook"
    text = feedback(result, spec)
    assert "No question could be graded" in text and "Hidden check" not in text


def test_outcome_classifies_points():
    assert [outcome(0, 4), outcome(1, 4), outcome(4, 4), outcome(5, 4), outcome(2, None)] == \
        ["zero", "partial", "full", "full", "full"]
