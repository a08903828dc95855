"""Does the autograder zip grade on (simulated) Gradescope exactly as `sgdkit grade` does, and safely?

Each stage's zip is laid out as Gradescope lays it out, under a temp root that
SGDKIT_AUTOGRADER_ROOT points at: source/ (the unzipped zip), submission/,
results/, and run_autograder copied beside them. The zip's own setup.sh runs for
real (tests/autograder_root.py): its `venv` step once per session (pip installs
the kit's wheel and the pinned dependencies into a throwaway venv, from the
package sources this machine's pip is configured with: the only thing that
differs from Gradescope, where they come from PyPI), its `lockdown` step in
every root. It skips `system` (apt). Then run_autograder grades, as root, with
namespaces off (as on Gradescope, whose Docker forbids unshare): each kernel
runs as a fresh unprivileged uid.
"""
import csv
import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from attacks import NOT_WITHOUT_NAMESPACES, STAGES, all_attacks
from autograder_root import link_venv, setup, temp_base
from corpus import descent, losses, tradeoffs
from sgdkit import ASSIGNMENTS, ROOT, SOLUTIONS
from sgdkit.answers import fill, solution_regions
from sgdkit.gradescope import find_submission, to_gradescope
from sgdkit.grade import grade

CORPORA = {"01-losses": losses, "02-descent": descent, "03-tradeoffs": tradeoffs}
SAMPLES = ROOT / "examples" / "sample-class"
ONE_LINER = ("from collections import defaultdict\n"
             "__sgdkit_verdicts__ = defaultdict(lambda: defaultdict(lambda: None))")
FEW_ATTACKS = ("oracle-hunter", "-nan.ipynb")  # fast subset of tests/attacks, per stage
NOBODY = 65534  # an unprivileged uid with no business in /autograder

# Gradescope's documented results.json fields (autograder specifications, "Output format").
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
NUMBER = (int, float)
TOP_FIELDS = {"score": NUMBER, "execution_time": NUMBER, "output": str, "output_format": FORMATS,
              "test_output_format": FORMATS, "test_name_format": FORMATS, "visibility": VISIBILITIES,
              "stdout_visibility": VISIBILITIES, "extra_data": dict, "tests": list, "leaderboard": list}
TEST_FIELDS = {"score": NUMBER, "max_score": NUMBER, "status": {"passed", "failed"}, "name": str,
               "name_format": FORMATS, "number": str, "output": str, "output_format": FORMATS, "tags": list,
               "visibility": VISIBILITIES, "extra_data": dict}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Gradescope runs the autograder as root")


def field_problems(where, value, fields):
    """What in one JSON object is not a documented field of the documented kind."""
    if not isinstance(value, dict):
        return [f"{where} is not an object"]
    found = []
    for key, item in value.items():
        kind = fields.get(key)
        if kind is None:
            found.append(f"{where}: {key!r} is no documented field")
        elif isinstance(kind, set) and item not in kind:
            found.append(f"{where}: {key}={item!r} is not one of {sorted(kind)}")
        elif not isinstance(kind, set) and (not isinstance(item, kind) or isinstance(item, bool)):
            found.append(f"{where}: {key}={item!r} is not {kind}")
        elif isinstance(item, str) and "\r" in item:
            found.append(f"{where}: {key} has a carriage return (the specification asks for \\n alone)")
    return found


def schema_problems(results):
    """Everything in results.json that Gradescope's specification does not allow, and our own promises."""
    found = field_problems("results.json", results, TOP_FIELDS)
    tests = results.get("tests") if isinstance(results.get("tests"), list) else []
    for index, test in enumerate(tests):
        found += field_problems(f"tests[{index}]", test, TEST_FIELDS)
        if isinstance(test, dict) and not all(isinstance(tag, str) for tag in test.get("tags", [])):
            found.append(f"tests[{index}]: tags must be strings")
    if "score" not in results and not all("score" in t for t in tests):
        found.append("no top-level score and a test without one")
    if not found and tests:  # the kit's own promise: the total is the sum of its tests
        if abs(sum(t["score"] for t in tests) - results["score"]) > 1e-9:
            found.append(f"score {results['score']} is not the sum of the tests' scores")
        if any(t["score"] > t["max_score"] for t in tests):
            found.append("a test scores more than its max_score")
    return found


def test_schema_check_catches_what_gradescope_rejects():
    """Does the schema check itself flag unknown fields, wrong kinds, bad visibility and a wrong total?"""
    good = {"score": 2, "tests": [{"name": "a", "score": 2, "max_score": 2, "visibility": "visible"}]}
    assert schema_problems(good) == []
    assert schema_problems({**good, "scor": 1})
    assert schema_problems({**good, "visibility": "public"})
    assert schema_problems({**good, "score": "2"})
    assert schema_problems({**good, "score": 3})
    assert schema_problems({"tests": [{"name": "a", "status": "ok"}]})


def test_results_json_from_a_result():
    """Does a result become one test per part: hidden ones scored with their hint, public ones 0-point practice?"""
    result = {"file": "x.ipynb", "status": "ok", "detail": "", "total": 2, "questions": {"q": {"tests": [
        {"name": "value", "hidden": True, "points": 2, "passed": True},
        {"name": "shape", "hidden": True, "points": 3, "passed": False, "hint": "mind the shape"},
        {"name": "example", "hidden": False, "points": 0, "passed": False, "message": "got 1, expected 2"},
    ]}}}
    results = to_gradescope(result, "# Feedback")
    assert schema_problems(results) == []
    value, shape, example = results["tests"]
    assert (value["score"], value["max_score"], value["status"], value["number"]) == (2, 2, "passed", "1.1")
    assert (shape["score"], shape["max_score"], shape["output"]) == (0, 3, "mind the shape")
    assert (example["score"], example["max_score"], example["tags"]) == (0, 0, ["practice"])
    assert example["status"] == "failed" and example["output"] == "got 1, expected 2"
    assert results["score"] == 2 and results["output"] == "# Feedback" and results["output_format"] == "md"


def test_the_submission_is_found(tmp_path):
    """Is the one notebook graded (or the export zip), with the stage's own name winning, and none refused?"""
    assert find_submission(tmp_path / "missing", "losses.ipynb")[0] is None
    (tmp_path / "notes.txt").write_text("hi")
    assert "no notebook" in find_submission(tmp_path, "losses.ipynb")[1]
    (tmp_path / "export.zip").write_bytes(b"PK")
    assert find_submission(tmp_path, "losses.ipynb") == (tmp_path / "export.zip", None)
    (tmp_path / "mine.ipynb").write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "mine-checkpoint.ipynb").write_text("{}")
    assert find_submission(tmp_path, "losses.ipynb") == (tmp_path / "mine.ipynb", None)
    (tmp_path / "losses.ipynb").write_text("{}")
    assert find_submission(tmp_path, "losses.ipynb") == (tmp_path / "losses.ipynb", None)
    (tmp_path / "losses.ipynb").unlink()
    (tmp_path / "losses.ipynb").symlink_to("/etc/hostname")  # a link in an uploaded zip: never followed
    assert find_submission(tmp_path, "losses.ipynb") == (tmp_path / "mine.ipynb", None)
    (tmp_path / "losses.ipynb").unlink()
    (tmp_path / "losses.ipynb").write_text("{}")
    (tmp_path / "losses.ipynb").rename(tmp_path / "other.ipynb")
    path, why = find_submission(tmp_path, "losses.ipynb")
    assert path is None and "2 .ipynb files" in why and "mine" not in why  # no student text in the reason


# ---------------------------------------------------------------- the simulated Gradescope


def lay_out(base, stage, zips):
    """/autograder as Gradescope builds it for one stage: source/ (the unzipped zip), submission/, results/."""
    root = base / stage
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir(parents=True)
    with zipfile.ZipFile(zips / f"{stage}.zip") as zf:
        for info in zf.infolist():  # as unzip does: the modes stored in the zip
            zf.extract(info, root / "source")
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777 or 0o644)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    return root


@pytest.fixture(scope="module")
def roots(built_kit, autograder_venv):
    """{stage: its simulated /autograder}, set up by the zip's own setup.sh (one shared venv)."""
    base = temp_base("sgdkit-gradescope-")
    try:
        found = {}
        for stage in STAGES:
            found[stage] = lay_out(base, stage, built_kit)
            link_venv(found[stage], autograder_venv)
            setup(found[stage], "lockdown")
        yield found
    finally:
        shutil.rmtree(base, ignore_errors=True)


TIMES = []  # seconds per run_autograder, for the README


def autograde(root, name, data):
    """Gradescope's per-submission run: fresh submission/ and results/, run_autograder as root: results.json."""
    for folder in ("submission", "results"):
        shutil.rmtree(root / folder, ignore_errors=True)
        (root / folder).mkdir()
    (root / "submission" / name).write_bytes(data)
    start = time.monotonic()
    done = subprocess.run([str(root / "run_autograder")], cwd=root, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "SGDKIT_AUTOGRADER_ROOT": str(root)})
    TIMES.append(time.monotonic() - start)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "no namespaces, as root" in done.stderr, "run_autograder must grade in Gradescope's mode"
    results = json.loads((root / "results" / "results.json").read_text())
    assert schema_problems(results) == [], schema_problems(results)
    return results


def points(results):
    """{question: (points, possible)} from results.json's hidden tests (named "question: part")."""
    found = {}
    for test in results["tests"]:
        if "practice" not in test["tags"]:
            question = test["name"].split(":")[0]
            got, possible = found.get(question, (0, 0))
            found[question] = (got + test["score"], possible + test["max_score"])
    return found


def outcome(got, possible):
    return "zero" if got == 0 else "full" if got == possible else "partial"


def blank(stage):
    return next((ASSIGNMENTS / stage).glob("*.ipynb"))


def answered(stage, answers, edits=None):
    """The stage's student notebook with the solution typed in, and `answers` ({function: text}) over it."""
    student = blank(stage)
    solution = {f: text for f, (_, text) in solution_regions(SOLUTIONS / stage / student.name).items()}
    return nbformat.writes(fill(nbformat.read(student, as_version=4), {**solution, **answers}, edits=edits)).encode()


def with_cell(stage, source):
    """The blank student notebook with one code cell added at the end."""
    nb = nbformat.read(blank(stage), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nbformat.writes(nb).encode()


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_solution_full_blank_zero_bug_on_its_own_question(roots, built_kit, stage):
    """Does the solution get full marks, the blank 0, and a planted bug lose points on its own question only?"""
    solution = autograde(roots[stage], blank(stage).name, (built_kit / f"{stage}-solution.ipynb").read_bytes())
    assert solution["score"] == sum(p for _, p in points(solution).values()) > 0, solution["output"]
    assert solution["extra_data"]["status"] == "ok"
    assert autograde(roots[stage], blank(stage).name, blank(stage).read_bytes())["score"] == 0
    bug = CORPORA[stage].MUTANTS[0]
    got = points(autograde(roots[stage], "mine.ipynb", answered(stage, {bug["function"]: bug["solution"]})))
    assert {q: outcome(*got[q]) for q in got} == {q: bug["expected"][q] for q in got}, bug["name"]


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_one_line_verdict_trick_earns_nothing(roots, stage):
    """Does the notebook setting `__sgdkit_verdicts__` to "everything passed" still score 0?"""
    results = autograde(roots[stage], blank(stage).name, with_cell(stage, ONE_LINER))
    assert results["score"] == 0, results["output"]


def attack_results(roots, chosen):
    """[(attack, results.json)] for each attack, graded alone as its own Gradescope submission."""
    found = []
    for attack in chosen:
        data = attack.make(json.loads(blank(attack.stage).read_text()))
        found.append((attack, autograde(roots[attack.stage], Path(attack.file).name or "x.ipynb", data)))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_a_few_attacks_earn_nothing(roots, stage):
    """Do a few attacks of tests/attacks (an oracle hunter, NaN answers) earn 0 through run_autograder?"""
    chosen = [a for a in all_attacks() if a.stage == stage and any(k in a.file for k in FEW_ATTACKS)]
    assert chosen, f"no attack of {stage} matches {FEW_ATTACKS}; has tests/attacks changed?"
    paid = [f"{a.file}: {r['score']} ({a.pays})" for a, r in attack_results(roots, chosen) if r["score"] != 0]
    assert paid == []


def samples(stage, fast):
    """Sample-class files of the stage: all of them, or two with bugs (partial marks) for the fast run."""
    with open(SAMPLES / stage / "EXPECTED.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if fast:
        rows = [r for r in rows if r["status"] == "ok" and "partial" in r.values()][:2]
    return [SAMPLES / stage / r["file"] for r in rows]


def check_agreement(roots, zips, stage, files, tmp_path):
    """Does results.json give each file the points `sgdkit grade` (same zip) gives it, question by question?"""
    graded = grade(files, stage, tmp_path / "graded", zips=zips, workers=2, progress=False)
    by_grade = {r["file"]: r for r in graded}
    wrong = []
    for path in files:
        results = autograde(roots[stage], path.name, path.read_bytes())
        want = by_grade[path.name]
        mine = {q: got for q, (got, _) in points(results).items()}
        theirs = {q: v["points"] for q, v in want["questions"].items()}
        if results["score"] != want["total"] or mine != theirs:
            wrong.append(f"{path.name}: Gradescope {results['score']} {mine}, sgdkit grade {want['total']} {theirs}")
    assert wrong == []


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_scores_agree_with_sgdkit_grade(roots, built_kit, stage, tmp_path):
    """Do two sample-class files with bugs score the same in results.json as in `sgdkit grade`?"""
    check_agreement(roots, built_kit, stage, samples(stage, fast=True), tmp_path)


def as_nobody(*command):
    """Run a command as an unprivileged uid with no groups, as the grader runs student code."""
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command],
                          capture_output=True, text=True, timeout=120)


# Run as student code runs: every file under the root it can open, with a hash and whether it defines a judge.
READABLE = r"""
import hashlib, json, os, sys
found = []
for folder, _, names in os.walk(sys.argv[1], followlinks=True):  # as student code may: the venv is a link
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        found.append([path, hashlib.sha256(data).hexdigest(), b"def judge(" in data])
print(json.dumps(found))
"""


@pytest.mark.slow
def test_hidden_material_is_root_only(roots):
    """Can student code run the venv's Python and the kit, yet read no copy of the checks or hidden tests?"""
    root = roots[STAGES[0]]
    python = str(root / "sgdkit-venv" / "bin" / "python")
    ran = as_nobody(python, "-c", "import sgdkit.grade, numpy, otter, matplotlib; print('ok')")
    assert ran.stdout.strip() == "ok", ran.stderr[-2000:]
    for secret in ("source", "source/tests", "source/files/sgdkit_checks", "source/seed"):
        assert as_nobody("cat", str(root / secret)).returncode != 0, f"{secret} is readable by student code"
    hidden = {hashlib.sha256(p.read_bytes()).hexdigest() for folder in ("tests", "files/sgdkit_checks")
              for p in (root / "source" / folder).rglob("*.py") if p.stat().st_size > 200}  # not an empty __init__
    walked = as_nobody(python, "-c", READABLE, str(root))
    readable = json.loads(walked.stdout)
    assert len(readable) > 1000, "the venv must be readable by student code"
    assert [path for path, digest, judge in readable if digest in hidden or judge or "sgdkit_checks" in path] == []


@pytest.mark.slow
def test_each_image_draws_its_own_secret_seed(roots):
    """Does every setup draw its own base seed, in a file only root can read?"""
    seeds = [root / "source" / "seed" for root in roots.values()]
    assert all(p.stat().st_uid == 0 and stat.S_IMODE(p.stat().st_mode) == 0o600 for p in seeds)
    assert len({p.read_text() for p in seeds}) == len(seeds)
    assert all(int(p.read_text()) > 0 for p in seeds)


@pytest.mark.slow
def test_time_per_submission_is_reported(roots):
    """(Runs last in this module.) How long did one run_autograder take, as the README quotes it?"""
    if not TIMES:
        pytest.skip("no submission was graded in this session")
    ordered = sorted(TIMES)
    print(f"\nrun_autograder: {len(TIMES)} runs, median {ordered[len(ordered) // 2]:.1f} s, max {ordered[-1]:.1f} s")


@pytest.mark.mutants
@pytest.mark.parametrize("stage", STAGES)
def test_whole_class_corpus_and_attacks_through_gradescope(roots, built_kit, stage, tmp_path):
    """Does every sample agree with `sgdkit grade`, every bug and alternative score as recorded, every attack 0?

    Except the attacks in NOT_WITHOUT_NAMESPACES, which test what this mode does not promise.
    """
    check_agreement(roots, built_kit, stage, samples(stage, fast=False), tmp_path)
    corpus, wrong = CORPORA[stage], []
    for entry in corpus.MUTANTS + corpus.ALTERNATIVES:
        nb = answered(stage, {entry["function"]: entry["solution"]}, entry.get("edits"))
        got = points(autograde(roots[stage], "mine.ipynb", nb))
        if {q: outcome(*got[q]) for q in got} != {q: entry["expected"][q] for q in got}:
            wrong.append(f"{entry['name']}: {got}")
    chosen = [a for a in all_attacks() if a.stage == stage and not any(k in a.file for k in NOT_WITHOUT_NAMESPACES)]
    wrong += [f"{a.file}: {r['score']}" for a, r in attack_results(roots, chosen) if r["score"] != 0]
    assert wrong == []
