"""Does `otter grade` grade the kit's zip as `sgdkit grade` does, with the kit's trust?

`otter grade -a <stage>.zip -p <folder>` (otter.grade.main) runs here for real,
host side and all: it unzips the zip, rewrites its otter_config.json, builds an
image from otter's own packaged Dockerfile, grades each notebook in a container
of its own, loads each results.pkl with dill and writes final_grades.csv with
merge_scores_to_df. Only Docker is simulated (SimulatedDocker, standing in for
python_on_whales' client, which has no daemon to talk to here): the build
follows otter's Dockerfile line by line in a folder that stands for the
image's /, copying in exactly what its ADD lines name when they name it and
running setup.sh where its RUN line does (the `lockdown` step; the venv comes
from the session's one run of setup.sh's `venv` step, tests/autograder_root.py,
from the same files); a container is a copy of that folder in which
/autograder/run_autograder runs as root, with the submission and an empty
results.pkl copied in first and results.pkl copied out after, as otter's
containers.py does. Network isolation (`--no-network`) is Docker's and not
simulated; the kit's own isolation (namespaces off, a fresh uid per kernel) is
real.

A second test runs the real `otter grade` against a real Docker daemon, and
skips, saying so, where none answers.
"""
import io
import json
import os
import pickle
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from attacks import NOT_WITHOUT_NAMESPACES, STAGES, all_attacks
from autograder_root import link_venv, setup, temp_base
from sgdkit import ASSIGNMENTS, ROOT
from sgdkit.demo import read_expected
from sgdkit.grade import grade
from sgdkit.otter_results import dumps, from_result
from sgdkit.results import status_text
from sgdkit.stage import read_summary

SAMPLES = ROOT / "examples" / "sample-class"
# The fast run's attack, per stage: planting results where otter loads them (test_gradescope.py and
# test_attacks.py run the others through the same runner and pipeline; the mutants run, all of them here).
FEW_ATTACKS = ("forge-results",)
# Containers at once, as `otter grade --containers 2`: the 2 cores of the kit's machine.
CONTAINERS = 2
# Attacks on what Docker gives each container and the simulation does not.
NOT_SIMULATED = {"host-ipc-": "Docker gives every container an IPC namespace of its own; simulated containers "
                              "running at once share this machine's, so two submissions can talk"}
# Everything a results.pkl of the kit may name: otter's result classes and one built-in exception.
PICKLED = {("otter.test_files", "GradingResults"), ("otter.test_files.exception_test", "ExceptionTestFile"),
           ("otter.test_files.abstract_test", "TestCase"), ("otter.test_files.abstract_test", "TestCaseResult"),
           ("builtins", "RuntimeError")}
FIXED_COLUMNS = ("file", "total_points_earned", "percent_correct", "grading_status")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="otter's containers run the autograder as root")


def otter_status(result):
    """The grading_status final_grades.csv must show for a result: otter's "Completed", else why it scored nothing."""
    return "Completed" if result["status"] == "ok" or result["total"] > 0 else status_text(result)


def restricted_load(data):
    """Load a pickle allowing only the PICKLED names: fails on anything else a pickle could call."""
    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            assert (module, name) in PICKLED, f"the pickle names {module}.{name}"
            return super().find_class(module, name)

    return Restricted(io.BytesIO(data)).load()


# ---------------------------------------------------------------- results.pkl from a result


def result_of(status="ok", detail="", passed=(True, False)):
    """A result of one question "q" with hidden parts "value" (2 points) and "shape" (3), and a public test."""
    value, shape = passed
    points = 2 * value + 3 * shape
    details = {} if shape else {"shape": "(2, 3) != (3, 2)"}
    return {"file": "x.ipynb", "status": status, "detail": detail, "total": points, "possible": 5,
            "questions": {"q": {"points": points, "possible": 5, "details": details,
                                "tests": [{"name": "value", "hidden": True, "points": 2, "passed": value},
                                          {"name": "shape", "hidden": True, "points": 3, "passed": shape,
                                           "hint": "mind the shape"},
                                          {"name": "example", "hidden": False, "points": 0, "passed": False,
                                           "message": "got 1, expected 2"}]}}}


def table(results):
    """final_grades.csv's rows as otter writes them (merge_scores_to_df), by file, from {file: GradingResults}."""
    from otter.grade.utils import merge_scores_to_df

    for file, graded in results.items():
        graded.file = file  # as otter's containers.py sets it on the host
    frame = merge_scores_to_df(list(results.values()))
    return {row["file"]: row for row in frame.to_dict("records")}


def test_results_pkl_is_otters_table_of_the_result():
    """Do otter's own functions load the pickle and give the kit's points, and the status where none were earned?"""
    results = {
        "ok.ipynb": result_of(),
        "partial-timeout.ipynb": result_of("timeout", "code cell 9 was still running after 60 s"),
        "invalid.ipynb": result_of("invalid", "not a notebook: cut off mid-file", passed=(False, False)),
        "blank.ipynb": result_of(passed=(False, False)),
    }
    loaded = {file: restricted_load(dumps(from_result(r))) for file, r in results.items()}
    rows = table(loaded)
    assert rows["points-per-question"]["q"] == 5
    assert {file: (rows[file]["q"], rows[file]["total_points_earned"], rows[file]["grading_status"])
            for file in results} == {
        "ok.ipynb": (2, 2, "Completed"),
        "partial-timeout.ipynb": (2, 2, "Completed"),  # points kept: otter's table cannot show both
        "invalid.ipynb": (0, 0, "invalid: not a notebook: cut off mid-file"),
        "blank.ipynb": (0, 0, "Completed"),  # graded fully, earned nothing
    }
    shape = loaded["ok.ipynb"].results["q"].test_case_results[1]
    assert (shape.passed, shape.message) == (False, "(2, 3) != (3, 2)")  # why, for the instructor
    assert "got 1, expected 2" in loaded["ok.ipynb"].summary()


def test_grading_loads_only_otters_test_files_and_otter_stays_whole():
    """Do scoring and the pickle load otter.test_files without otter's top level (its API: nbconvert, pandas),
    and does a later `import otter` in the same process still get the real package, which loads the pickle?"""
    program = textwrap.dedent("""
        import sys
        from sgdkit import otter_results
        from sgdkit.scoring import otter_test_files
        otter_test_files()
        data = otter_results.dumps(otter_results.failed("x"))
        print(sorted(name for name in ("otter", "otter.api", "pandas", "nbconvert") if name in sys.modules))
        import dill, otter
        print(otter.__version__ == otter.version.__version__, callable(otter.Notebook),
              type(dill.loads(data)).__name__)
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "True True GradingResults"], done.stdout + done.stderr


def test_restricted_load_refuses_what_calls_code():
    """Does the pickle check refuse a pickle that calls a function when loaded (what a forged one would do)?"""
    class Forged:
        def __reduce__(self):
            return (print, ("forged",))

    with pytest.raises(AssertionError, match="builtins.print"):
        restricted_load(pickle.dumps(Forged()))


# ---------------------------------------------------------------- the simulated Docker


def dockerfile(path):
    """otter's Dockerfile as (instruction, arguments), continuation lines joined, comments dropped."""
    text = Path(path).read_text().replace("\\\n", " ")
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


class Container:
    """One simulated container: a copy of its image's folder, and what was seen of its run."""

    def __init__(self, base, command, network):
        self.id, self.command, self.network = uuid.uuid4().hex, command, network
        self.root = base / f"container-{self.id[:12]}"
        self.process = self.output = self.started = None
        self.log, self.seconds, self.results, self.pickle = "", 0.0, [], b""

    def path(self, inside):
        return self.root / inside.lstrip("/")

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


class SimulatedDocker:
    """What otter's containers.py calls of python_on_whales' `docker`, done on this machine, as root, with no daemon.

    An image is a folder standing for its /; a container is a copy of it. `containers`
    keeps every container's record (its results folder's entries, its log, its run time).
    """

    def __init__(self, base, venv):
        self.base, self.venv, self.images, self.containers = base, venv, {}, []
        self.container = self  # docker.container.create(...), docker.container.copy(...), ...
        # otter runs containers from several threads: no copy of run_autograder may be open for writing
        # while another thread forks to run one (the child would hold it open: "Text file busy")
        self.forking = threading.Lock()

    # docker.build: otter's Dockerfile, line by line
    def build(self, context, build_args, tags, file, load):
        context, image = Path(context), self.base / f"image-{len(self.images)}"
        image.mkdir()
        for instruction, arguments in dockerfile(file):
            if instruction == "ADD":
                self._add(context, image, arguments.split())
            elif instruction == "RUN":
                for command in arguments.split("&&"):
                    self._run(image, shlex.split(command))
            else:
                assert instruction in ("ARG", "FROM"), f"otter's Dockerfile has a new instruction: {instruction}"
        self.images[tags[0]] = image

    @staticmethod
    def _add(context, image, words):
        """ADD: every source (a glob) must match; a folder's contents, or a file, go into the destination."""
        *sources, dest = words
        target = image / dest.lstrip("/")
        for pattern in sources:
            matched = sorted(context.glob(pattern))
            assert matched, f"otter's Dockerfile ADDs {pattern}, which the zip does not hold: the build fails"
            for path in matched:
                if path.is_dir():
                    shutil.copytree(path, target, dirs_exist_ok=True)
                elif dest.endswith("/"):
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target / path.name)
                else:
                    shutil.copy2(path, target)

    def _run(self, image, words):
        """RUN, one command at a time: the ones that shape /autograder for real, the package installs skipped."""
        program, args = words[0], words[1:]
        if program == "mkdir":
            for folder in args[1:] if args[0] == "-p" else args:
                (image / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif program == "touch":
            for name in args:
                (image / name.lstrip("/")).touch()
        elif program == "chmod" and args[0] == "+x":
            for name in args[1:]:
                target = image / name.lstrip("/")
                target.chmod(target.stat().st_mode | 0o111)
        elif program == "dos2unix":  # a no-op on the kit's files, which must have no CR to begin with
            assert all(b"\r" not in (image / name.lstrip("/")).read_bytes() for name in args)
        elif program == "bash" and args[0].endswith("/setup.sh"):
            self._setup(image / "autograder")
        else:
            assert program in ("apt-get", "rm"), f"otter's Dockerfile runs a new command: {' '.join(words)}"

    def _setup(self, root):
        """setup.sh where the Dockerfile runs it: what its venv step read for the session's venv must be there."""
        for path in (self.venv.parent / "source").iterdir():  # setup.sh, the wheel, the pins
            copied = root / "source" / path.name
            assert copied.is_file() and copied.read_bytes() == path.read_bytes(), \
                f"setup.sh runs before {path.name} is in the image: its venv step would fail"
        link_venv(root, self.venv)
        setup(root, "lockdown")

    # docker.container.*
    def create(self, image, command, networks):
        container = Container(self.base, command, networks)
        with self.forking:
            shutil.copytree(self.images[image], container.root, symlinks=True)
        self.containers.append(container)
        return container

    def copy(self, source, dest):
        """docker cp: into a container, a root-owned copy keeping the mode; out of one, a link stays a link."""
        if isinstance(dest, tuple):
            container, inside = dest
            shutil.copy2(source, container.path(inside))
            os.chown(container.path(inside), 0, 0)
        else:
            container, inside = source
            found = container.path(inside)
            os.remove(dest)
            if found.is_symlink():
                os.symlink(os.readlink(found), dest)
            else:
                shutil.copy2(found, dest)

    def start(self, container):
        command = [str(container.path(part)) if part.startswith("/autograder") else part
                   for part in container.command]
        # An image's environment, not pytest's: PATH and HOME as Docker's ubuntu image has them.
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
               "SGDKIT_AUTOGRADER_ROOT": str(container.path("/autograder"))}
        container.output = open(container.root.parent / f"{container.root.name}.log", "w+")
        container.started = time.monotonic()
        with self.forking:
            container.process = subprocess.Popen(command, cwd=container.root, env=env, stdout=container.output,
                                                 stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, container):
        code = container.process.wait()
        container.seconds = time.monotonic() - container.started
        container.output.seek(0)
        container.log = container.output.read()
        container.output.close()
        results = container.path("/autograder/results")
        container.results = sorted((p.name, p.lstat().st_uid, stat.S_ISREG(p.lstat().st_mode))
                                   for p in results.iterdir())
        container.pickle = (results / "results.pkl").read_bytes() if (results / "results.pkl").is_file() else b""
        return code

    def logs(self, container):
        return container.log

    def kill(self, container):
        os.killpg(container.process.pid, 9)


@contextmanager
def simulated_docker(venv):
    """otter's containers.py talking to a SimulatedDocker: yields it (its containers' records)."""
    import otter.grade.containers

    base = temp_base("sgdkit-otter-")
    docker = SimulatedDocker(base, venv)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(otter.grade.containers, "docker", docker)
            yield docker
    finally:
        shutil.rmtree(base, ignore_errors=True)


def otter_grade(zip_path, inbox, out, name):
    """`otter grade -a zip -p inbox -o out -n name --no-network`, as its command line runs it: the table's rows."""
    import otter.grade

    otter.grade.main(name=name, paths=[str(inbox)], output_dir=str(out), autograder=str(zip_path),
                     containers=CONTAINERS, no_network=True)
    frame = pd.read_csv(out / "final_grades.csv", keep_default_na=False)
    return {str(row["file"]): row for row in frame.to_dict("records")}


# ---------------------------------------------------------------- what is graded


def outcomes(row):
    """An EXPECTED.csv row's outcome (full, partial, zero) per question."""
    return [value for key, value in row.items() if key not in ("file", "status", "about")]


def solution_and_blank(stage):
    """The sample-class names of the stage's solution and of its blank notebook."""
    rows = read_expected(SAMPLES / stage)
    solution = next(f for f, row in rows.items() if row["status"] == "ok" and set(outcomes(row)) == {"full"})
    return solution, next((ASSIGNMENTS / stage).glob("*.ipynb")).name


def samples(stage, fast):
    """Sample-class files: all of them, or the solution, the blank, a bug, a broken upload, and a notebook that
    earned points though it could not be graded fully, where the stage has one."""
    rows = read_expected(SAMPLES / stage)
    if not fast:
        return [SAMPLES / stage / file for file in rows]
    chosen = [*solution_and_blank(stage),
              next(f for f, row in rows.items() if row["status"] == "ok" and "partial" in outcomes(row))]
    chosen += [f for f, row in rows.items() if row["status"] == "invalid"][:1]  # never run: cheap
    # not a hanging one: each costs the grader's timeout
    chosen += [f for f, row in rows.items() if row["status"] not in ("ok", "timeout") and "full" in outcomes(row)][:1]
    return [SAMPLES / stage / file for file in dict.fromkeys(chosen)]


def utf8(name):
    """Can `name` be written as UTF-8 (not a file name of undecodable bytes)?"""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def stage_attacks(stage, fast):
    """The stage's notebook attacks (otter grade takes *.ipynb): a few, or all that this mode must stop.

    Not the file names aimed at the kit's own CSV files (final_grades.csv is otter's: it writes a name with a
    CR so that it reads back without it), nor one that is not UTF-8 (otter's CSV writer fails on it).
    """
    chosen = [a for a in all_attacks() if a.stage == stage and a.file.endswith(".ipynb") and utf8(a.file)
              and not a.extra.get("csv") and not any(k in a.file for k in [*NOT_WITHOUT_NAMESPACES, *NOT_SIMULATED])]
    return [a for a in chosen if any(k in a.file for k in FEW_ATTACKS)] if fast else chosen


TIMES = []  # seconds per simulated container, for the README
WALL = []  # (seconds, submissions) per `otter grade` run


def grade_both_ways(stage, zips, venv, base, fast):
    """One stage's samples and attacks through `otter grade` (simulated Docker) and its samples through `sgdkit grade`.

    The fast run leaves the solution and the blank out of `sgdkit grade`: `sgdkit build` has just graded
    both with it (full marks, 0), and the tests check those outcomes themselves.
    Returns (final_grades.csv rows by file, sgdkit grade results by file, the containers' records, the attacks).
    """
    inbox = base / f"inbox-{stage}"
    inbox.mkdir()
    files = samples(stage, fast)
    for path in files:
        shutil.copy(path, inbox / path.name)
    blank = json.loads(next((ASSIGNMENTS / stage).glob("*.ipynb")).read_text())
    attacks = stage_attacks(stage, fast)
    for attack in attacks:
        (inbox / attack.file).write_bytes(attack.make(blank))
    compared = [f for f in files if not fast or f.name not in solution_and_blank(stage)]
    # One worker: two threads' ast.parse can race in this CPython 3.11 (gh-106905, "AST constructor
    # recursion depth mismatch"), which turns a submission into an internal error now and then.
    graded = {r["file"]: r for r in grade(compared, stage, base / f"graded-{stage}", zips=zips, workers=1,
                                          progress=False)}
    out = base / f"otter-{stage}"
    out.mkdir()
    with simulated_docker(venv) as docker:
        start = time.monotonic()
        rows = otter_grade(zips / f"{stage}.zip", inbox, out, f"sgdkit-{stage}")
        WALL.append((time.monotonic() - start, len(docker.containers)))
        containers = docker.containers
    TIMES.extend(c.seconds for c in containers)
    return rows, graded, containers, attacks


def disagreements(rows, graded):
    """Every way final_grades.csv differs from `sgdkit grade`'s results: points per question, total, status."""
    wrong = []
    for file, result in graded.items():
        row = rows.get(file)
        if row is None:
            wrong.append(f"{file}: no row in final_grades.csv")
            continue
        mine = {q: float(row[q]) for q in row if q not in FIXED_COLUMNS}
        theirs = {q: float(result["questions"].get(q, {}).get("points", 0)) for q in mine}
        if not set(result["questions"]) <= set(mine):
            wrong.append(f"{file}: final_grades.csv has no column for {set(result['questions']) - set(mine)}")
        elif mine != theirs or float(row["total_points_earned"]) != result["total"]:
            wrong.append(f"{file}: otter {row['total_points_earned']} {mine}, sgdkit {result['total']} {theirs}")
        if row["grading_status"] != otter_status(result):
            wrong.append(f"{file}: grading_status {row['grading_status']!r}, expected {otter_status(result)!r}")
    return wrong


def trust_problems(containers):
    """What any container's results folder holds besides the grader's two regular files, root's, and a clean pickle."""
    found = []
    for c in containers:
        if c.results != [("results.json", 0, True), ("results.pkl", 0, True)]:
            found.append(f"container {c.root.name}: results/ holds {c.results}")
        try:
            restricted_load(c.pickle)
        except Exception as exc:
            found.append(f"container {c.root.name}: results.pkl: {exc}")
        if c.network != ["none"]:
            found.append(f"container {c.root.name}: networks {c.network} (otter grade --no-network)")
        if "no namespaces, as root" not in c.log:
            found.append(f"container {c.root.name}: not graded in the mode of Docker's containers: {c.log[-500:]!r}")
    return found


@pytest.fixture(scope="module")
def graded_fast(built_kit, autograder_venv):
    """{stage: grade_both_ways(...)} on the fast selection of every stage."""
    base = temp_base("sgdkit-otter-grade-")
    try:
        yield {stage: grade_both_ways(stage, built_kit, autograder_venv, base, fast=True) for stage in STAGES}
    finally:
        shutil.rmtree(base, ignore_errors=True)


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_otter_grade_agrees_with_sgdkit_grade(graded_fast, built_kit, stage):
    """Does final_grades.csv give the solution full marks, the blank 0, and samples the points and status
    `sgdkit grade` gives them?"""
    rows, graded, _, _ = graded_fast[stage]
    assert disagreements(rows, graded) == []
    worth = {q["name"]: float(q["points"]) for q in read_summary(stage, built_kit)["questions"] if not q["manual"]}
    solution, blank = (rows[file] for file in solution_and_blank(stage))
    assert {q: float(solution[q]) for q in worth} == worth and solution["grading_status"] == "Completed"
    assert float(solution["total_points_earned"]) == sum(worth.values()) and solution["percent_correct"] == 1
    assert {q: float(rows["points-per-question"][q]) for q in worth} == worth
    assert float(blank["total_points_earned"]) == 0
    assert any(row["grading_status"] not in ("Completed", "--") for row in rows.values()), \
        "no sample shows why it was not graded fully"


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_attacks_earn_nothing_and_plant_nothing(graded_fast, stage):
    """Do the attacks earn 0 in final_grades.csv, and does every results folder hold only the grader's two files?"""
    rows, _, containers, attacks = graded_fast[stage]
    assert [a.file for a in attacks if "forge-results" in a.file], "the planting attack is missing"
    paid = [f"{a.file}: {rows[a.file]['total_points_earned']} ({a.pays})" for a in attacks
            if float(rows[a.file]["total_points_earned"]) != 0]
    assert paid == []
    assert trust_problems(containers) == []


@needs_root
@pytest.mark.slow
def test_time_per_submission_is_reported(graded_fast):
    """How long did one simulated container take, as the README quotes it?"""
    ordered = sorted(TIMES)
    assert ordered, "no container ran"
    seconds, count = map(sum, zip(*WALL))
    print(f"\notter grade (simulated Docker, {CONTAINERS} containers at once): {count} submissions in {seconds:.0f} s, "
          f"{seconds / count:.1f} s each; a container took {ordered[len(ordered) // 2]:.1f} s (median), "
          f"{ordered[-1]:.1f} s at most")


@needs_root
@pytest.mark.mutants
@pytest.mark.parametrize("stage", STAGES)
def test_whole_class_and_every_attack_through_otter_grade(built_kit, autograder_venv, stage):
    """Does every sample agree with `sgdkit grade`, every notebook attack earn 0 and plant nothing, in otter grade?"""
    base = temp_base("sgdkit-otter-grade-")
    try:
        rows, graded, containers, attacks = grade_both_ways(stage, built_kit, autograder_venv, base, fast=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    wrong = disagreements(rows, graded) + trust_problems(containers)
    wrong += [f"{a.file!r}: {rows[a.file]['total_points_earned'] if a.file in rows else 'no row'}" for a in attacks
              if a.file not in rows or float(rows[a.file]["total_points_earned"]) != 0]
    assert wrong == []


# ---------------------------------------------------------------- the real thing, where Docker runs


def docker_answers():
    """None if a Docker daemon answers, else why not."""
    if shutil.which("docker") is None:
        return "no docker command on this machine"
    try:
        done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=60)
    except subprocess.TimeoutExpired:
        return "the Docker daemon did not answer within 60 s"
    lines = (done.stderr or done.stdout).strip().splitlines()
    return None if done.returncode == 0 else f"no Docker daemon answers ({lines[-1] if lines else done.returncode})"


@pytest.mark.slow
def test_real_otter_grade_in_docker(built_kit, tmp_path):
    """With a real Docker daemon: does `otter grade` give the solution full marks, the blank and the planter 0?"""
    why = docker_answers()
    if why:
        pytest.skip(f"real `otter grade` needs Docker: {why}; the simulated-Docker tests above stand in for it")
    stage = STAGES[0]
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    out.mkdir()
    files = [SAMPLES / stage / file for file in solution_and_blank(stage)]
    for path in files:
        shutil.copy(path, inbox / path.name)
    blank = json.loads(files[1].read_text())
    planter = next(a for a in stage_attacks(stage, fast=True) if "forge-results" in a.file)
    (inbox / planter.file).write_bytes(planter.make(blank))
    done = subprocess.run([str(Path(sys.executable).with_name("otter")), "grade", "-a", str(built_kit / f"{stage}.zip"),
                           "-n", f"sgdkit-test-{stage}", "-o", str(out), "--no-network", str(inbox)],
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    frame = pd.read_csv(out / "final_grades.csv", keep_default_na=False)
    rows = {str(row["file"]): row for row in frame.to_dict("records")}
    graded = {r["file"]: r for r in grade(files, stage, tmp_path / "graded", zips=built_kit, workers=2,
                                          progress=False)}
    assert disagreements(rows, graded) == []
    assert float(rows[planter.file]["total_points_earned"]) == 0
