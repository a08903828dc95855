"""`sgdkit build`: solutions/ -> assignments/<stage>/ and autograder/zips/, as named steps.

A stage is a folder solutions/NN-name holding one otter-assign master notebook.
Each stage goes through STEPS in a temp folder of its own; only the last step
writes into the repository, so a build that fails leaves assignments/ as it was.

autograder/zips/ then holds, per stage: <stage>.zip (otter's autograder),
<stage>-solution.ipynb, and <stage>.json, read by `sgdkit grade`:
{"stage", "notebook", "questions": [{"name", "points", "manual"}, ...],
"solution_seconds"} (questions in notebook order; points of manual questions
come from their question config).
"""
import hashlib
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import ASSIGNMENTS, SOLUTIONS, ZIPS

STAGE_FOLDER = re.compile(r"\d\d-[a-z0-9][a-z0-9-]*")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".DS_Store")
# otter run has no timeout of its own; a solution that hangs must not hang the build.
OTTER_TIMEOUT = 900


class BuildError(Exception):
    """A stage cannot be built; the message says where and why."""


# Reading the sources ---------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One stage: its name (NN-name) and master notebook."""

    name: str
    master: Path

    @property
    def notebook(self) -> str:
        return self.master.name


@dataclass
class Question:
    """One `# BEGIN QUESTION` block of a master notebook."""

    name: str
    manual: bool
    points: float | None
    solutions: list[str] = field(default_factory=list)  # each in-cell SOLUTION region, dedented
    code: set[str] = field(default_factory=set)  # stripped lines of its code cells, tests excluded


@dataclass
class Master:
    """What the build needs to know of one master notebook."""

    stage: Stage
    kernel: str
    questions: list[Question]
    public: set[str]  # stripped lines a student is shown
    secret: dict[str, str]  # stripped solution / hidden-test line -> where it comes from


@dataclass
class Exercise:
    """One `# BEGIN EXERCISE <question>` block of the reference library."""

    question: str
    qualname: str  # e.g. "List2D.mean"
    indent: str
    body: list[str]
    where: str  # "solutions/match/list2d.py:96"


def find_stages(solutions: Path) -> list[Stage]:
    """The stages under `solutions`, in order."""
    stages = []
    for folder in sorted(p for p in solutions.iterdir() if p.is_dir()):
        if not STAGE_FOLDER.fullmatch(folder.name):
            continue
        masters = sorted(folder.glob("*.ipynb"))
        if len(masters) > 1:
            names = ", ".join(m.name for m in masters)
            raise BuildError(f"{folder}: a stage holds one master notebook, found {names}")
        if masters:
            stages.append(Stage(folder.name, masters[0]))
    return stages


def _block_marker(cell) -> tuple[str, str] | None:
    """("BEGIN" | "END", "QUESTION" | ...) for an otter block boundary cell, else None."""
    if cell.cell_type != "raw" or not cell.source.strip():
        return None
    first = cell.source.strip().splitlines()[0]
    match = re.fullmatch(r"#\s*(BEGIN|END)\s+(QUESTION|SOLUTION|TESTS|PROMPT)\s*", first, re.I)
    return (match.group(1).upper(), match.group(2).upper()) if match else None


def _test_config(source: str) -> dict:
    """The YAML between an otter test cell's BEGIN/END TEST CONFIG lines."""
    import yaml

    match = re.search(r'^"""\s*# BEGIN TEST CONFIG\n(.*?)^"""\s*# END TEST CONFIG', source, re.S | re.M)
    return (yaml.safe_load(match.group(1)) or {}) if match else {}


def _is_trivial(line: str) -> bool:
    """True for a stripped line that tells nothing: blank, `...`, brackets, `pass`."""
    return not line.strip(string.punctuation + string.whitespace) or line in {
        "pass", "return", "else:", "try:", "finally:", "continue", "break",
    }


def _split_solution(lines: list[str], where: str) -> tuple[list[str], list[list[str]]]:
    """(shown lines, solution regions) of a code cell, by otter's in-cell markers.

    A region is the run of lines between `# BEGIN SOLUTION` and `# END SOLUTION`,
    or one line ending in `# SOLUTION`.
    """
    shown, regions, region = [], [], None
    for line in lines:
        if re.match(r"\s*# BEGIN SOLUTION( NO PROMPT)?\s*$", line):
            region = []
        elif line.rstrip().endswith("# END SOLUTION") and region is not None:
            regions.append(region)
            region = None
        elif region is not None:
            region.append(line)
        elif re.search(r"# ?SOLUTION( NO PROMPT)?\s*$", line):
            regions.append([line])
        else:
            shown.append(line)
    if region is not None:
        raise BuildError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return shown, regions


def parse_master(stage: Stage) -> Master:
    """Questions, shown lines and secret lines of a stage's master notebook."""
    import nbformat
    import yaml

    nb = nbformat.read(stage.master, as_version=4)
    open_blocks, questions, public, secret, test_points = [], [], set(), {}, {}
    for index, cell in enumerate(nb.cells):
        where = f"solutions/{stage.name}/{stage.notebook} cell {index + 1}"
        marker = _block_marker(cell)
        if marker == ("BEGIN", "QUESTION"):
            config = yaml.safe_load(cell.source) or {}
            if "name" not in config:
                raise BuildError(f"{where}: a BEGIN QUESTION cell needs `name:`")
            questions.append(Question(config["name"], bool(config.get("manual")), config.get("points")))
        if marker:
            verb, kind = marker
            if verb == "BEGIN":
                open_blocks.append(kind)
            elif not open_blocks or open_blocks.pop() != kind:
                raise BuildError(f"{where}: END {kind} does not close the block opened before it")
            continue
        if cell.cell_type == "raw":
            continue
        lines = cell.source.splitlines()
        if "TESTS" in open_blocks:
            config = _test_config(cell.source)
            name = questions[-1].name
            test_points[name] = test_points.get(name, 0) + (config.get("points") or 0)
            shown, hidden = ([], lines) if config.get("hidden") else (lines, [])
        elif cell.cell_type == "markdown":
            shown, hidden = ([], lines) if "SOLUTION" in open_blocks else (lines, [])
        else:
            shown, regions = _split_solution(lines, where)
            hidden = [line for region in regions for line in region]
            if questions and "QUESTION" in open_blocks:
                questions[-1].code.update(line.strip() for line in lines)
                questions[-1].solutions += [textwrap.dedent("\n".join(region)) for region in regions]
        public.update(line.strip() for line in shown)
        for line in hidden:
            secret.setdefault(line.strip(), where)
    if open_blocks:
        raise BuildError(f"solutions/{stage.name}/{stage.notebook}: {open_blocks[-1]} block never ends")
    for question in questions:
        if not question.manual:  # autograded points are the sum of the test cells' points
            question.points = test_points.get(question.name, 0)
    secret = {line: w for line, w in secret.items() if line not in public and not _is_trivial(line)}
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    return Master(stage, kernel, questions, public, secret)


def _qualname(lines: list[str], index: int, indent: str) -> str:
    """Dotted name of the def/class blocks enclosing line `index`, e.g. "List2D.mean"."""
    names, limit = [], len(indent)
    for line in reversed(lines[:index]):
        match = re.match(r"(\s*)(?:async\s+)?(?:def|class)\s+(\w+)", line)
        if match and len(match.group(1)) < limit:
            names.append(match.group(2))
            limit = len(match.group(1))
            if limit == 0:
                break
    return ".".join(reversed(names))


def split_exercises(text: str, origin: str) -> list[list[str] | Exercise]:
    """A library file as runs of plain lines and Exercise blocks, in order."""
    lines, parts, run, index = text.splitlines(), [], [], 0
    while index < len(lines):
        begin = re.fullmatch(r"(\s*)# BEGIN EXERCISE (\w+)\s*", lines[index])
        if not begin:
            if re.fullmatch(r"\s*# (BEGIN|END) EXERCISE\b.*", lines[index]):
                raise BuildError(f"{origin}:{index + 1}: stray exercise marker {lines[index].strip()!r}")
            run.append(lines[index])
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not re.fullmatch(r"\s*# END EXERCISE\s*", lines[end]):
            if "# BEGIN EXERCISE" in lines[end]:
                raise BuildError(f"{origin}:{end + 1}: exercise inside exercise {begin.group(2)}")
            end += 1
        if end == len(lines):
            raise BuildError(f"{origin}:{index + 1}: exercise {begin.group(2)} has no END EXERCISE")
        qualname = _qualname(lines, index, begin.group(1))
        parts += [run, Exercise(begin.group(2), qualname, begin.group(1), lines[index + 1:end], f"{origin}:{index + 1}")]
        run, index = [], end + 1
    return parts + [run]


def library_files(match_dir: Path) -> dict[str, list[list[str] | Exercise]]:
    """Every .py file of the reference library (posix path under match/) split into exercises."""
    return {
        path.relative_to(match_dir).as_posix(): split_exercises(
            path.read_text(), f"solutions/match/{path.relative_to(match_dir).as_posix()}"
        )
        for path in sorted(match_dir.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def exercises(library: dict) -> dict[str, list[Exercise]]:
    """question -> its Exercise blocks (a question may span several functions), in library order."""
    found = {}
    for parts in library.values():
        for part in parts:
            if isinstance(part, Exercise):
                found.setdefault(part.question, []).append(part)
    return found


# The steps -------------------------------------------------------------------


@dataclass
class Job:
    """One stage's build: what it reads, and what each step leaves for the next."""

    stage: Stage
    stages: list[Stage]
    masters: dict[str, Master]
    library: dict
    solutions: Path
    work: Path
    env: dict = field(default_factory=dict)
    dist: Path | None = None  # otter assign's output
    otter_zip: Path | None = None
    view: Path | None = None  # the student folder, as it will be published
    solution: Path | None = None  # the normalised solution notebook
    solution_seconds: float | None = None
    solution_scores: dict = field(default_factory=dict)  # question -> (score, max)
    blank_scores: dict = field(default_factory=dict)

    @property
    def staged(self) -> Path:
        """The folder otter assign runs in: master, match/, sgdkit_checks/."""
        return self.work / "master"


def stub(exercise: Exercise, notebook: str) -> str:
    """The line that replaces an exercise's body in a stage where it is still to be written."""
    return (
        f'{exercise.indent}raise NotImplementedError("{exercise.qualname} is yours to write: '
        f'answer question {exercise.question} in {notebook}")'
    )


def stage_source(parts: list, origin: str, stage: str, stages: list[Stage], owners: dict[str, str]) -> str:
    """One library file as the student of `stage` gets it."""
    position = {s.name: i for i, s in enumerate(stages)}
    notebooks = {s.name: s.notebook for s in stages}
    lines = [f"# Generated by `sgdkit build` from {origin}: do not edit this copy; edit that file and rebuild."]
    for part in parts:
        if not isinstance(part, Exercise):
            lines += part
        elif part.question not in owners:  # its stage is not written yet: stub it everywhere
            lines.append(stub(part, "a later stage"))
        elif position[owners[part.question]] >= position[stage]:
            lines.append(stub(part, notebooks[owners[part.question]]))
        else:
            lines += part.body
    return "\n".join(lines) + "\n"


def owners_of(masters: dict[str, Master]) -> dict[str, str]:
    """question -> name of the stage whose master notebook asks it."""
    owners = {}
    for master in masters.values():
        for question in master.questions:
            if question.name in owners:
                raise BuildError(f"question {question.name} is in {owners[question.name]} and {master.stage.name}")
            owners[question.name] = master.stage.name
    return owners


def write_library(job: Job) -> None:
    """Write the stage's match/ copy: this and later stages' exercises stubbed, earlier ones filled in."""
    match_dir, dest = job.solutions / "match", job.staged / "match"
    owners = owners_of(job.masters)
    for path in sorted(match_dir.rglob("*")):
        rel = path.relative_to(match_dir).as_posix()
        if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if rel in job.library:
            out.write_text(stage_source(job.library[rel], f"solutions/match/{rel}", job.stage.name, job.stages, owners))
        else:
            shutil.copyfile(path, out)


def run_assign(job: Job) -> None:
    """Run otter assign on the master, next to the match/ copy and sgdkit_checks/."""
    for name in ("match", "sgdkit_checks"):
        if (job.stage.master.parent / name).exists():
            raise BuildError(f"solutions/{job.stage.name}/{name}: the build writes this folder; remove it")
    shutil.copytree(job.stage.master.parent, job.staged, ignore=JUNK, dirs_exist_ok=True)
    shutil.copytree(job.solutions / "checks", job.staged / "sgdkit_checks", ignore=JUNK)
    command = [sys.executable, "-m", "otter", "assign", "--no-run-tests", job.stage.notebook, "dist"]
    _run(command, job.staged, job.env, "otter assign")
    job.dist = job.staged / "dist"
    zips = sorted((job.dist / "autograder").glob("*-autograder_*.zip"))
    if len(zips) != 1:
        raise BuildError(f"otter assign made {len(zips)} autograder zips, expected 1")
    job.otter_zip = zips[0]


def write_student(job: Job) -> None:
    """Normalise otter's student and solution notebooks so two builds give the same bytes."""
    import nbformat

    job.view = job.work / "view"
    shutil.copytree(job.dist / "student", job.view, ignore=JUNK)
    job.solution = job.work / "solution.ipynb"
    for source, dest in [(job.view / job.stage.notebook, job.view / job.stage.notebook),
                         (job.dist / "autograder" / job.stage.notebook, job.solution)]:
        nb = normalise(nbformat.read(source, as_version=4), job.stage)
        nbformat.write(nb, dest)


def normalise(nb, stage: Stage):
    """Stamp the notebook with its stage; clear outputs; give cells ids derived from their content."""
    nb.metadata["sgdkit"] = {
        "stage": stage.name,
        "generated": f"by sgdkit build from solutions/{stage.name}/{stage.notebook}; edit there",
    }
    seen = {}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # JupyterLab's run timestamps
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        base = hashlib.sha1(f"{cell.cell_type}\0{cell.source}".encode()).hexdigest()[:8]
        cell.id = base if base not in seen else f"{base}-{seen[base]}"
        seen[base] = seen.get(base, 0) + 1
    nb.nbformat_minor = max(nb.nbformat_minor, 5)  # cell ids need 4.5
    return nb


def secrets_for(stage: Stage, stages: list[Stage], masters: dict[str, Master], library: dict) -> dict[str, str]:
    """Lines that must not reach this stage's folder: solutions and hidden tests of it and later stages."""
    position = [s.name for s in stages].index(stage.name)
    owners = owners_of(masters)
    shown = {line.strip() for parts in library.values() for part in parts
             if not isinstance(part, Exercise) for line in part}
    for earlier in stages[:position + 1]:
        shown |= masters[earlier.name].public
    secret = {}
    for exercise in (e for blocks in exercises(library).values() for e in blocks):
        owner = owners.get(exercise.question)  # None: no stage asks it yet, so every stage gets a stub
        if owner is None or [s.name for s in stages].index(owner) >= position:
            for line in exercise.body:
                if owner is None or line.strip() not in masters[owner].public:
                    secret.setdefault(line.strip(), exercise.where)
    for later in stages[position:]:
        secret.update(masters[later.name].secret)
    return {line: where for line, where in secret.items() if line not in shown and not _is_trivial(line)}


def _strings(value, label: str):
    """(label, string) for every string inside a JSON value, e.g. ("cells/4/source", ...)."""
    if isinstance(value, str):
        yield label, value
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from _strings(value[key], f"{label}/{key}" if label else key)
    elif isinstance(value, list):
        if all(isinstance(item, str) for item in value):  # a source stored as a list of lines
            yield label, "".join(value)
        else:
            for i, item in enumerate(value):
                yield from _strings(item, f"{label}/{i}")


def find_leaks(folder: Path, secret: dict[str, str], shown_as: str = "") -> list[str]:
    """One message per secret line found in a file under `folder` (named `shown_as`), with file and line."""
    leaks = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        rel = f"{shown_as or folder.name}/{path.relative_to(folder).as_posix()}"
        if path.suffix == ".ipynb":
            try:
                texts = list(_strings(json.loads(text), ""))
            except json.JSONDecodeError:
                texts = [("", text)]
        else:
            texts = [("", text)]
        for label, chunk in texts:
            for number, line in enumerate(chunk.splitlines(), 1):
                if line.strip() in secret:
                    label = re.sub(r"^cells/(\d+)/source$", lambda m: f"cell {int(m[1]) + 1}", label)
                    place = f"{rel}: {label} line {number}" if label else f"{rel}:{number}"
                    leaks.append(f"{place}: {line.strip()!r} (from {secret[line.strip()]})")
    return leaks


def check_leaks(job: Job) -> None:
    """Fail if a solution or hidden-test line of this or a later stage is in the student view."""
    secret = secrets_for(job.stage, job.stages, job.masters, job.library)
    leaks = find_leaks(job.view, secret, f"assignments/{job.stage.name}")
    if leaks:
        raise BuildError("solution or hidden-test lines reach the student version:\n  " + "\n  ".join(leaks))


def otter_scores(job: Job, notebook: Path, label: str) -> tuple[dict, dict]:
    """Run `otter run` on a copy of `notebook`: ({question: (score, max)}, {question: output})."""
    folder = job.work / f"run-{label}"
    folder.mkdir()
    submission = folder / job.stage.notebook  # otter's init cell wants the master's file name
    shutil.copyfile(notebook, submission)
    command = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(job.otter_zip), "-o", str(folder), str(submission)]
    _run(command, folder, job.env, f"otter run ({label})")
    results = json.loads((folder / "results.json").read_text())["tests"]
    scored = [test for test in results if "max_score" in test]
    scores = {test["name"]: (test.get("score") or 0, test["max_score"]) for test in scored}
    # otter's report of a question, cut to what fits on a screen
    outputs = {test["name"]: "\n".join(test.get("output", "").splitlines()[:40]) for test in scored}
    return scores, outputs


def verify(job: Job) -> None:
    """The solution must score full marks and the blank student notebook 0, per question."""
    master = job.masters[job.stage.name]
    autograded = {q.name: q.points for q in master.questions if not q.manual}
    start = time.perf_counter()
    job.solution_scores, outputs = otter_scores(job, job.solution, "solution")
    job.solution_seconds = round(time.perf_counter() - start, 1)
    problems = [f"{q}: otter does not grade it" for q in autograded if q not in job.solution_scores]
    problems += [f"{q}: worth {job.solution_scores[q][1]} in otter but {p} by its test cells"
                 for q, p in autograded.items() if q in job.solution_scores and job.solution_scores[q][1] != p]
    problems += [f"{q}: the solution scores {s}/{m}\n{textwrap.indent(outputs[q], '      ')}"
                 for q, (s, m) in job.solution_scores.items() if s != m]
    job.blank_scores, outputs = otter_scores(job, job.view / job.stage.notebook, "blank")
    problems += [f"{q}: the blank notebook scores {s}/{m}; a hidden test passes without an answer\n"
                 f"{textwrap.indent(outputs[q], '      ')}" for q, (s, m) in job.blank_scores.items() if s != 0]
    if problems:
        raise BuildError("otter run disagrees:\n  " + "\n  ".join(problems))


def publish(job: Job, assignments: Path, zips: Path) -> None:
    """Write assignments/<stage>/ (removing stale files) and autograder/zips/<stage>.*."""
    sync(job.view, assignments / job.stage.name)
    zips.mkdir(parents=True, exist_ok=True)
    _repack(job.otter_zip, zips / f"{job.stage.name}.zip")
    _write_if_changed(zips / f"{job.stage.name}-solution.ipynb", job.solution.read_bytes())
    master = job.masters[job.stage.name]
    summary = {
        "stage": job.stage.name,
        "notebook": job.stage.notebook,
        "questions": [{"name": q.name, "points": q.points, "manual": q.manual} for q in master.questions],
        "solution_seconds": job.solution_seconds,
    }
    _write_if_changed(zips / f"{job.stage.name}.json", (json.dumps(summary, indent=2) + "\n").encode())


# The steps in order. `publish` is last, after verify (which measures the
# solution's run time for the summary), so nothing unverified is published.
STEPS = [
    ("library", write_library),
    ("assign", run_assign),
    ("student", write_student),
    ("leaks", check_leaks),
    ("verify", verify),
]


# Files -------------------------------------------------------------------


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write `data` unless the file already holds it (keeps mtimes of unchanged files)."""
    if not path.is_file() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def sync(source: Path, dest: Path) -> None:
    """Make `dest` hold exactly the files of `source`."""
    wanted = {p.relative_to(source) for p in source.rglob("*") if p.is_file()}
    if dest.exists():
        for path in sorted(dest.rglob("*"), reverse=True):  # children before their folders
            rel = path.relative_to(dest)
            if path.is_file() and rel not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for rel in sorted(wanted):
        _write_if_changed(dest / rel, (source / rel).read_bytes())


def _repack(source: Path, dest: Path) -> None:
    """Copy a zip with fixed timestamps and sorted entries, so equal contents give equal bytes."""
    temp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in sorted(zin.namelist()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = zin.getinfo(name).external_attr
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, zin.read(name))
    _write_if_changed(dest, temp.read_bytes())
    temp.unlink()


def _tree_hash(paths: list[Path]) -> str:
    """sha256 over the names and bytes of the files at or under `paths` (a missing path counts too)."""
    digest = hashlib.sha256()
    for top in paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()) if top.exists() else []
        files = [p for p in files if "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts]
        digest.update(f"{top.name}:{len(files)}\0".encode())
        for path in files:
            digest.update(path.relative_to(top).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _outputs(stage: Stage, assignments: Path, zips: Path) -> list[Path]:
    return [assignments / stage.name, zips / f"{stage.name}.zip", zips / f"{stage.name}.json",
            zips / f"{stage.name}-solution.ipynb"]


def _stamp(stage: Stage, inputs: str, assignments: Path, zips: Path) -> str:
    """What the stamp file holds after a good build: hashes of the inputs and of the outputs."""
    outputs = _outputs(stage, assignments, zips)
    return json.dumps({"inputs": inputs, "outputs": _tree_hash(outputs)}) + "\n"


def _up_to_date(stage: Stage, inputs: str, assignments: Path, zips: Path) -> bool:
    stamp = zips / f"{stage.name}.stamp"
    outputs = _outputs(stage, assignments, zips)
    return (stamp.is_file() and all(p.exists() for p in outputs)
            and stamp.read_text() == _stamp(stage, inputs, assignments, zips))


def _orphans(assignments: Path, names: list[str]) -> list[Path]:
    """Stage folders under assignments/ that a build made (their notebook says so) but no master makes now."""
    if not assignments.is_dir():
        return []
    found = []
    for folder in sorted(p for p in assignments.iterdir() if p.is_dir() and p.name not in names):
        for notebook in folder.glob("*.ipynb"):
            try:
                generated = "sgdkit" in json.loads(notebook.read_text()).get("metadata", {})
            except (ValueError, UnicodeDecodeError):
                generated = False
            if generated and STAGE_FOLDER.fullmatch(folder.name):
                found.append(folder)
                break
    return found


# Running otter ---------------------------------------------------------------


def kernel_env(folder: Path, kernel: str = "python3") -> dict:
    """An environment in which otter and its kernels run on this interpreter (the venv's python).

    Users call .venv/bin/sgdkit without activating the venv, and a user-level
    kernelspec may point elsewhere: JUPYTER_PATH comes first in Jupyter's search,
    so a spec written there makes kernel `kernel` this interpreter.
    """
    spec = folder / "jupyter" / "kernels" / kernel
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "sgdkit", "language": "python"}))
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(folder / "jupyter"), env.get("JUPYTER_PATH")]))
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silences a debugger warning in every kernel
    return env


def _run(command: list[str], cwd: Path, env: dict, what: str) -> str:
    """Run `command`; on failure or timeout kill its whole tree and raise BuildError with its output."""
    import psutil

    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=OTTER_TIMEOUT)
    except subprocess.TimeoutExpired:
        # Kernels start in sessions of their own: kill by parentage, not by process group.
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        output, _ = process.communicate()
        raise BuildError(f"{what} took more than {OTTER_TIMEOUT} s:\n{output[-3000:]}")
    if process.returncode != 0:
        raise BuildError(f"{what} failed (exit {process.returncode}):\n{output[-3000:]}")
    return output


# The build -------------------------------------------------------------------


def build(solutions: Path = SOLUTIONS, assignments: Path = ASSIGNMENTS, zips: Path = ZIPS, *,
          stages: list[str] | None = None, force: bool = False, verify_scores: bool = True,
          log=print) -> dict[str, Job | None]:
    """Build the stages (all, or those named) in parallel: {stage: its Job, or None if up to date}.

    `verify_scores=False` skips the otter runs (the kit's tests use it to rebuild
    cheaply); the summary then has no solution_seconds.
    """
    found = find_stages(solutions)
    names = [s.name for s in found]
    unknown = sorted(set(stages or []) - set(names))
    if unknown:
        raise BuildError(f"no stage {', '.join(unknown)} under {solutions} (stages: {', '.join(names)})")
    masters = {s.name: parse_master(s) for s in found}
    library = library_files(solutions / "match")
    owners = owners_of(masters)  # fails early on a question asked twice
    for question, blocks in exercises(library).items():
        if question not in owners:
            log(f"warning: {blocks[0].where}: exercise {question} is no question of any master notebook, "
                "so every stage gets it as a stub")
    inputs = _tree_hash([solutions, Path(__file__)])
    lock = threading.Lock()

    def say(stage: str, text: str) -> None:
        with lock:
            log(f"{stage:<16}{text}")

    def one(stage: Stage, work: Path) -> Job | None:
        if not force and _up_to_date(stage, inputs, assignments, zips):
            say(stage.name, "up to date")
            return None
        job = Job(stage, found, masters, library, solutions, work, kernel_env(work, masters[stage.name].kernel))
        steps = STEPS if verify_scores else [s for s in STEPS if s[0] != "verify"]
        for name, step in steps + [("publish", lambda j: publish(j, assignments, zips))]:
            start = time.perf_counter()
            try:
                step(job)
            except BuildError as error:
                raise BuildError(f"{stage.name}: {name}: {error}") from None
            say(stage.name, f"{name:<9}{time.perf_counter() - start:6.1f} s")
        if verify_scores:  # an unverified build must not pass for up to date
            (zips / f"{stage.name}.stamp").write_text(_stamp(stage, inputs, assignments, zips))
        return job

    todo = [s for s in found if not stages or s.name in stages]
    if not stages:
        for folder in _orphans(assignments, names):
            shutil.rmtree(folder)
            say(folder.name, "removed: no master notebook in solutions/ any more")
    with tempfile.TemporaryDirectory(prefix="sgdkit-build-") as temp:
        with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
            futures = {s.name: pool.submit(one, s, Path(temp) / s.name) for s in todo}
        for future in futures.values():
            if future.exception() and not isinstance(future.exception(), BuildError):
                raise future.exception()
        errors = [str(f.exception()) for f in futures.values() if f.exception()]
        if errors:
            raise BuildError("\n".join(errors))
        return {name: future.result() for name, future in futures.items()}


def add_arguments(parser) -> None:
    """Options of `sgdkit build`."""
    parser.add_argument("--force", action="store_true", help="rebuild even when solutions/ has not changed")
    parser.add_argument("--stage", action="append", metavar="STAGE",
                        help="build only this stage (repeatable), e.g. 01-losses")


def main(args) -> int:
    """Run `sgdkit build`."""
    start = time.perf_counter()
    try:
        jobs = build(stages=args.stage, force=args.force)
    except BuildError as error:
        print(f"sgdkit build failed: {error}", file=sys.stderr)
        return 1
    built = [name for name, job in jobs.items() if job]
    print(f"built {len(built)} of {len(jobs)} stages in {time.perf_counter() - start:.1f} s" if built
          else "up to date")
    return 0
