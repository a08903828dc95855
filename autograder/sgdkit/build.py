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

from . import ASSIGNMENTS, ROOT, SOLUTIONS, ZIPS

STAGE_FOLDER = re.compile(r"\d\d-[a-z0-9][a-z0-9-]*")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".DS_Store")
# otter assign has no timeout of its own; a hang there must not hang the build.
OTTER_TIMEOUT = 900
# One `sgdkit grade` at a time in this process: each loads its stage's checks as the
# module `sgdkit_checks`, which the zip's test cases import by that name.
_GRADING = threading.Lock()


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
    answer: dict[str, str] = field(default_factory=dict)  # stripped line of its reference answer -> where
    tests: dict[str, "TestCell"] = field(default_factory=dict)  # part (test name without test_) -> its cell


@dataclass(frozen=True)
class TestCell:
    """One test case of a question: a `def test_<part>` in a test cell of the master."""

    part: str
    hidden: bool
    where: str  # "solutions/01-losses/losses.ipynb cell 45 line 4", the line of its def


@dataclass
class Master:
    """What the build needs to know of one master notebook."""

    stage: Stage
    kernel: str
    questions: list[Question]
    public: set[str]  # stripped lines a student is shown
    secret: dict[str, str]  # stripped solution / hidden-test line -> where it comes from
    given: set[str] = field(default_factory=set)  # shown outside solution cells and tests: prompts, given code
    shown_at: dict[str, str] = field(default_factory=dict)  # stripped shown line -> where the master shows it


@dataclass
class Exercise:
    """One `# BEGIN EXERCISE <question>` block of the reference library."""

    question: str
    qualname: str  # e.g. "List2D.mean"
    indent: str
    body: list[str]
    where: str  # "solutions/match/list2d.py:96", the BEGIN EXERCISE line

    def body_where(self, index: int) -> str:
        """Where body line `index` (0-based) sits in the library source."""
        origin, begin = self.where.rsplit(":", 1)
        return f"{origin}:{int(begin) + 1 + index}"


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


def _split_solution(lines: list[str], where: str) -> tuple[list[tuple[int, str]], list[list[tuple[int, str]]]]:
    """(shown lines, solution regions) of a code cell by otter's in-cell markers, as (1-based number, line).

    A region is the run of lines between `# BEGIN SOLUTION` and `# END SOLUTION`,
    or one line ending in `# SOLUTION`.
    """
    shown, regions, region = [], [], None
    for number, line in enumerate(lines, 1):
        if re.match(r"\s*# BEGIN SOLUTION( NO PROMPT)?\s*$", line):
            region = []
        elif line.rstrip().endswith("# END SOLUTION") and region is not None:
            regions.append(region)
            region = None
        elif region is not None:
            region.append((number, line))
        elif re.search(r"# ?SOLUTION( NO PROMPT)?\s*$", line):
            regions.append([(number, line)])
        else:
            shown.append((number, line))
    if region is not None:
        raise BuildError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return shown, regions


def _test_cells(lines: list[str], hidden: bool, where: str) -> dict[str, TestCell]:
    """part -> TestCell for every `def test_<part>(` of a test cell."""
    found = {}
    for number, line in enumerate(lines, 1):
        match = re.match(r"def test_(\w+)\(", line)
        if match:
            found[match.group(1)] = TestCell(match.group(1), hidden, f"{where} line {number}")
    return found


def parse_master(stage: Stage) -> Master:
    """Questions, shown lines and secret lines of a stage's master notebook."""
    import nbformat
    import yaml

    nb = nbformat.read(stage.master, as_version=4)
    open_blocks, questions, public, secret, test_points = [], [], set(), {}, {}
    given, shown_at = set(), {}
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
        numbered = list(enumerate(lines, 1))
        question = questions[-1] if questions and "QUESTION" in open_blocks else None
        if "TESTS" in open_blocks:
            config = _test_config(cell.source)
            test_points[question.name] = test_points.get(question.name, 0) + (config.get("points") or 0)
            question.tests.update(_test_cells(lines, bool(config.get("hidden")), where))
            shown, regions = ([], [numbered]) if config.get("hidden") else (numbered, [])
        elif cell.cell_type == "markdown":
            # a markdown cell inside SOLUTION is a written question's model answer
            shown, regions = ([], [numbered]) if "SOLUTION" in open_blocks else (numbered, [])
            if question and regions:
                question.answer.update(_where_lines(regions[0], where, question.answer))
        else:
            shown, regions = _split_solution(lines, where)
            if question:
                question.solutions += [textwrap.dedent("\n".join(line for _, line in r)) for r in regions]
                for region in regions:
                    question.answer.update(_where_lines(region, where, question.answer))
        if "TESTS" not in open_blocks and "SOLUTION" not in open_blocks and not regions:
            given.update(line.strip() for _, line in shown)
        public.update(line.strip() for _, line in shown)
        shown_at.update(_where_lines(shown, where, shown_at))
        for _, line in (pair for region in regions for pair in region):
            secret.setdefault(line.strip(), where)
    if open_blocks:
        raise BuildError(f"solutions/{stage.name}/{stage.notebook}: {open_blocks[-1]} block never ends")
    for question in questions:
        if not question.manual:  # autograded points are the sum of the test cells' points
            question.points = test_points.get(question.name, 0)
    secret = {line: w for line, w in secret.items() if line not in public and not _is_trivial(line)}
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    return Master(stage, kernel, questions, public, secret, given, shown_at)


def _where_lines(numbered: list[tuple[int, str]], where: str, seen: dict) -> dict[str, str]:
    """{stripped line: "<where> line N"} for the telling lines of `numbered` not already in `seen`."""
    found = {}
    for number, line in numbered:
        if not _is_trivial(line.strip()) and line.strip() not in seen:
            found.setdefault(line.strip(), f"{where} line {number}")
    return found


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


def _placed_lines(path: Path, rel: str):
    """(place, stripped line) for every line of a file; a notebook's strings are read one by one."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return
    texts = [("", text)]
    if path.suffix == ".ipynb":
        try:
            texts = list(_strings(json.loads(text), ""))
        except json.JSONDecodeError:
            pass
    for label, chunk in texts:
        label = re.sub(r"^cells/(\d+)/source$", lambda m: f"cell {int(m[1]) + 1}", label)
        for number, line in enumerate(chunk.splitlines(), 1):
            yield (f"{rel}: {label} line {number}" if label else f"{rel}:{number}"), line.strip()


def find_leaks(folder: Path, secret: dict[str, str], shown_as: str = "") -> list[str]:
    """One message per secret line found in a file under `folder` (named `shown_as`), with file and line."""
    leaks = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = f"{shown_as or folder.name}/{path.relative_to(folder).as_posix()}"
        leaks += [f"{place}: {line!r} (from {secret[line]})" for place, line in _placed_lines(path, rel)
                  if line in secret]
    return leaks


def answer_lines(question: Question, blocks: list[Exercise]) -> dict[str, str]:
    """Stripped lines of a question's reference answer (library block and master solution) -> where written."""
    found = {}
    for block in blocks:
        for index, line in enumerate(block.body):
            if not _is_trivial(line.strip()):
                found.setdefault(line.strip(), block.body_where(index))
    return {**question.answer, **found}


def notebook_answer_leaks(job: Job) -> list[str]:
    """Answer lines of this stage's questions that students see, wherever the master's markers are.

    Both the master (lines outside SOLUTION regions, public tests included) and
    the student notebook otter wrote are searched. A line the master also shows
    in a prompt or a given cell (outside solution cells and tests) is given
    away on purpose and allowed.
    """
    master, blocks = job.masters[job.stage.name], exercises(job.library)
    rel = f"assignments/{job.stage.name}/{job.stage.notebook}"
    reached = {}
    for place, line in _placed_lines(job.view / job.stage.notebook, rel):
        reached.setdefault(line, place)
    leaks, seen = [], set()
    for question in master.questions:
        answer = answer_lines(question, blocks.get(question.name, []))
        for line in answer:
            if line in master.given or line in seen or not (line in master.shown_at or line in reached):
                continue
            seen.add(line)  # a line shared by two answers: once
            where = master.shown_at.get(line, f"solutions/{job.stage.name}/{job.stage.notebook}")
            leaks.append(f"{where}: {line!r} is part of the answer to {question.name} ({answer[line]}) but is "
                         f"outside the SOLUTION markers, so it reaches {reached.get(line, rel)}")
    return leaks


def _numbered(parts: list) -> list[tuple[int, str, Exercise | None]]:
    """A library file's lines again, as (1-based number, line, the exercise it belongs to or None)."""
    out = []
    for part in parts:
        if isinstance(part, Exercise):
            out.append((0, part.indent + f"# BEGIN EXERCISE {part.question}", part))
            out += [(0, line, part) for line in part.body]
            out.append((0, part.indent + "# END EXERCISE", part))
        else:
            out += [(0, line, None) for line in part]
    return [(number, line, exercise) for number, (_, line, exercise) in enumerate(out, 1)]


def _function_span(lines: list[str], index: int) -> range:
    """Indices of the outermost function (a method, not its class) enclosing line `index`."""
    top, limit = None, len(lines[index]) - len(lines[index].lstrip())
    for i in range(index - 1, -1, -1):
        match = re.match(r"(\s*)(?:async\s+)?(def|class)\s", lines[i])
        if match and len(match.group(1)) < limit:
            if match.group(2) == "class":
                break
            top, limit = i, len(match.group(1))
            if limit == 0:
                break
    if top is None:
        return range(index, index + 1)
    end = top + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > limit):
        end += 1
    return range(top, end)


def library_answer_leaks(library: dict, masters: dict[str, Master]) -> list[str]:
    """Answer lines of an exercise in its function but outside its EXERCISE block: every stub would ship them."""
    questions = {q.name: q for master in masters.values() for q in master.questions}
    blocks, leaks = exercises(library), []
    for rel, parts in library.items():
        numbered = _numbered(parts)
        lines = [line for _, line, _ in numbered]
        for index, (_, _, exercise) in enumerate(numbered):
            if exercise is None or lines[index].strip() != f"# BEGIN EXERCISE {exercise.question}":
                continue
            question = questions.get(exercise.question, Question(exercise.question, False, None))
            answer = answer_lines(question, blocks[exercise.question])
            for i in _function_span(lines, index):
                number, line, inside = numbered[i]
                if inside is None and line.strip() in answer:
                    leaks.append(f"solutions/match/{rel}:{number}: {line.strip()!r} is part of the answer to "
                                 f"{exercise.question} ({answer[line.strip()]}) but is outside its "
                                 f"# BEGIN EXERCISE block in {exercise.qualname}, so the stub would not hide it")
    return list(dict.fromkeys(leaks))


def check_leaks(job: Job) -> None:
    """Fail if an answer line of this stage, or a solution or hidden-test line of a later one, is in the student view."""
    secret = secrets_for(job.stage, job.stages, job.masters, job.library)
    leaks = notebook_answer_leaks(job) + find_leaks(job.view, secret, f"assignments/{job.stage.name}")
    if leaks:
        raise BuildError("solution or hidden-test lines reach the student version:\n  " + "\n  ".join(leaks))


def verify(job: Job) -> None:
    """Graded as `sgdkit grade` grades, the solution passes every test, public and hidden, and the blank scores 0."""
    solution, blank = trusted_results(job)
    job.solution_scores, job.blank_scores = _scores(solution), _scores(blank)
    job.solution_seconds = solution.get("seconds")
    problems = solution_problems(job, solution) + blank_problems(job, blank)
    if problems:
        raise BuildError("the solution must pass every test and the blank notebook score 0:\n  "
                         + "\n  ".join(problems))


def trusted_results(job: Job) -> tuple[dict, dict]:
    """`sgdkit grade`'s results for the solution and the blank student notebook, from this build's zip."""
    from .grade import grade

    zips, inbox = job.work / "zips", job.work / "inbox"
    write_autograder(job, zips)
    inbox.mkdir()
    shutil.copyfile(job.solution, inbox / "solution.ipynb")
    shutil.copyfile(job.view / job.stage.notebook, inbox / "blank.ipynb")
    for attempt in range(2):
        with _GRADING:
            results = {r["file"]: r for r in grade([inbox], job.stage.name, job.work / "graded", zips=zips,
                                                   workers=2, progress=False, force=attempt > 0)}
        # "crashed" is mostly a kernel that failed to start under load, not the notebook: grade once more.
        if all(result["status"] != "crashed" for result in results.values()):
            break
    return results["solution.ipynb"], results["blank.ipynb"]


def _scores(result: dict) -> dict[str, tuple[float, float]]:
    """{question: (points, possible)} of one graded notebook, from its hidden tests."""
    return {question: (sum(t["points"] for t in got["tests"] if t["hidden"] and t["passed"]),
                       sum(t["points"] for t in got["tests"] if t["hidden"]))
            for question, got in result["questions"].items()}


def _test_where(job: Job, question: str, part: str) -> str:
    """Where the master defines a question's test, or at least the master notebook."""
    master = job.masters[job.stage.name]
    found = next((q.tests.get(part) for q in master.questions if q.name == question), None)
    return found.where if found else f"solutions/{job.stage.name}/{job.stage.notebook}"


def solution_problems(job: Job, result: dict) -> list[str]:
    """Why the solution does not pass every test cleanly: one line per failing test, naming its cell."""
    master = job.masters[job.stage.name]
    where = f"solutions/{job.stage.name}/{job.stage.notebook}"
    problems = [] if result["status"] == "ok" else [
        f"{where}: the solution does not run cleanly ({result['status']}: {'; '.join(result.get('notes') or [])})"]
    for question in (q for q in master.questions if not q.manual):
        got = result["questions"].get(question.name)
        if got is None:
            problems.append(f"{where}: question {question.name} is not graded")
            continue
        possible = job.solution_scores[question.name][1]
        if possible != question.points:
            problems.append(f"{where}: question {question.name} is worth {possible} in the autograder "
                            f"but {question.points} by its test cells")
        for test in (t for t in got["tests"] if not t["passed"]):
            why = test.get("message") or (got.get("details") or {}).get(test["name"]) or test.get("hint", "")
            kind = "hidden test" if test["hidden"] else "public test"
            problems.append(f"{_test_where(job, question.name, test['name'])}: {kind} {test['name']} of "
                            f"{question.name} fails on the solution: {_one_line(why)}")
    return problems


def blank_problems(job: Job, result: dict) -> list[str]:
    """Hidden tests that give points to the blank student notebook."""
    return [f"{_test_where(job, question, test['name'])}: hidden test {test['name']} of {question} passes on the "
            f"blank student notebook; every hidden part must fail without an answer"
            for question, got in result["questions"].items()
            for test in got["tests"] if test["hidden"] and test["passed"] and test["points"]]


def _one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def write_autograder(job: Job, zips: Path) -> None:
    """<zips>/<stage>.zip and <stage>.json: what `sgdkit grade` reads."""
    zips.mkdir(parents=True, exist_ok=True)
    _repack(gradescope_zip(job), zips / f"{job.stage.name}.zip")
    summary = {**stage_summary(job), "solution_seconds": job.solution_seconds}
    _write_if_changed(zips / f"{job.stage.name}.json", (json.dumps(summary, indent=2) + "\n").encode())


def stage_summary(job: Job) -> dict:
    """The stage's name, notebook and questions, as `sgdkit grade` reads them from <stage>.json."""
    master = job.masters[job.stage.name]
    return {
        "stage": job.stage.name,
        "notebook": job.stage.notebook,
        "questions": [{"name": q.name, "points": q.points, "manual": q.manual} for q in master.questions],
    }


# The Gradescope zip: otter's autograder zip (tests/, files/, otter_config.json,
# what `sgdkit grade` and `otter run -a` read) with otter's setup (Miniforge
# from GitHub, hidden tests run in the student's kernel) replaced by the kit's
# own: autograder/gradescope/{setup.sh,run_autograder}, and in sgdkit/ the kit
# as a wheel, the pins of its dependencies and the stage summary (without the
# measured run time, so that the zip's bytes depend only on the sources).

GRADESCOPE = ROOT / "autograder" / "gradescope"
PYPROJECT = ROOT / "pyproject.toml"
OTTER_SETUP = {"setup.sh", "run_autograder", "run_otter.py", "environment.yml", "requirements.txt", "requirements.R"}
# Ubuntu 22.04's python3.11 (Gradescope's default image). A pin that rules it
# out applies only where it can; elsewhere pip takes the newest version that fits.
OLDEST_PYTHON = "3.11.0"
EXECUTABLE, READABLE = 0o100755 << 16, 0o100644 << 16


def gradescope_zip(job: Job) -> Path:
    """otter's autograder zip with the kit's own setup, wheel, pins and stage summary (see above)."""
    folder = job.work / "gradescope"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    wheel = kit_wheel(folder)
    ours = {name: ((GRADESCOPE / name).read_bytes(), EXECUTABLE) for name in ("setup.sh", "run_autograder")}
    ours["sgdkit/stage.json"] = ((json.dumps(stage_summary(job), indent=2) + "\n").encode(), READABLE)
    ours["sgdkit/constraints.txt"] = (pinned_requirements().encode(), READABLE)
    ours[f"sgdkit/{wheel.name}"] = (wheel.read_bytes(), READABLE)
    dest = folder / f"{job.stage.name}.zip"
    with zipfile.ZipFile(job.otter_zip) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename not in OTTER_SETUP:
                zout.writestr(info, zin.read(info))
        for name, (data, mode) in ours.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode
            zout.writestr(info, data)
    return dest


def kit_wheel(folder: Path) -> Path:
    """The kit (autograder/sgdkit) as a wheel in `folder`, written directly: no build backend, no network.

    Its bytes depend only on the sources and pyproject.toml (fixed timestamps,
    sorted entries), so an unchanged kit gives an unchanged zip.
    """
    import base64
    import tomllib

    project = tomllib.loads(PYPROJECT.read_text())["project"]
    name, version = project["name"], project["version"]
    info = f"{name}-{version}.dist-info"
    package = Path(__file__).parent
    files = {f"sgdkit/{p.relative_to(package).as_posix()}": p.read_bytes() for p in sorted(package.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    metadata = [
        "Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}", *[f"Requires-Dist: {d}" for d in project["dependencies"]],
    ]
    scripts = [f"{script} = {target}" for script, target in project.get("scripts", {}).items()]
    files[f"{info}/METADATA"] = "\n".join(metadata + [""]).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: sgdkit build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = "\n".join(["[console_scripts]", *scripts, ""]).encode()
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for path, data in files.items()]
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,", ""]).encode()
    plain, wheel = folder / "plain.zip", folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(plain, "w") as zf:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path)
            entry.external_attr = READABLE
            zf.writestr(entry, data)
    _repack(plain, wheel)
    plain.unlink()
    return wheel


def pinned_requirements() -> str:
    """pip constraints: every distribution installed beside the kit here, at the version it has here."""
    from importlib.metadata import distributions

    pins = {}
    for dist in distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
        if name and name not in pins and name not in ("sgdkit", "pip", "setuptools", "wheel"):
            # the kit comes from its wheel; the installer tools are the venv's own
            pins[name] = f"{name}=={dist.version}{_python_marker(dist.metadata['Requires-Python'])}"
    lines = ["# Written by `sgdkit build`: the versions the kit was built and tested with (pip constraints)."]
    return "\n".join(lines + [pins[name] for name in sorted(pins)] + [""])


def _python_marker(requires_python: str | None) -> str:
    """'' if a distribution's Requires-Python admits OLDEST_PYTHON, else a marker limiting its pin to where it fits."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        needs = SpecifierSet(requires_python or "")
    except InvalidSpecifier:  # a legacy spelling, which pip ignores too
        return ""
    if needs.contains(OLDEST_PYTHON):
        return ""
    return "; " + " and ".join(f'python_full_version {s.operator} "{s.version}"' for s in needs)


def kit_inputs() -> str:
    """A hash of what the Gradescope part of a zip is made from: the kit, its setup files, pyproject.toml, the pins."""
    sources = _tree_hash([Path(__file__).parent, GRADESCOPE, PYPROJECT])
    return hashlib.sha256(f"{sources}\0{pinned_requirements()}".encode()).hexdigest()


def publish(job: Job, assignments: Path, zips: Path) -> None:
    """Write assignments/<stage>/ (removing stale files) and autograder/zips/<stage>.*."""
    sync(job.view, assignments / job.stage.name)
    write_autograder(job, zips)
    _write_if_changed(zips / f"{job.stage.name}-solution.ipynb", job.solution.read_bytes())


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


def stage_inputs(stage: Stage, stages: list[Stage], masters: dict[str, Master], solutions: Path) -> str:
    """A hash of what one stage's outputs are made from.

    That is its own folder, the library, the checks, this file and (through
    `kit_inputs`) what the zip's Gradescope part is made from; of the other
    masters only which stage asks which question, since the library copy stubs
    or fills in each exercise by that and names the notebook that asks it.
    """
    layout = [[s.name, s.notebook, [q.name for q in masters[s.name].questions]] for s in stages]
    own = _tree_hash([stage.master.parent, solutions / "match", solutions / "checks", Path(__file__)])
    return hashlib.sha256(f"{own}\0{json.dumps(layout)}\0{kit_inputs()}".encode()).hexdigest()


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

    A stage is rebuilt when `stage_inputs` changed; an up-to-date stage still
    gets the leak check. `verify_scores=False` skips grading the solution and
    the blank (the kit's tests use it to rebuild cheaply); the summary then has
    no solution_seconds.
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
    leaks = library_answer_leaks(library, masters)
    if leaks:
        raise BuildError("answer lines would reach students:\n  " + "\n  ".join(leaks))
    inputs = {s.name: stage_inputs(s, found, masters, solutions) for s in found}
    lock = threading.Lock()

    def say(stage: str, text: str) -> None:
        with lock:
            log(f"{stage:<16}{text}")

    def one(stage: Stage, work: Path) -> Job | None:
        if not force and _up_to_date(stage, inputs[stage.name], assignments, zips):
            # Another master's edit can make a line of this folder secret: the leak check is cheap, so it runs.
            try:
                check_leaks(Job(stage, found, masters, library, solutions, work, view=assignments / stage.name))
            except BuildError as error:
                raise BuildError(f"{stage.name}: leaks: {error}") from None
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
            (zips / f"{stage.name}.stamp").write_text(_stamp(stage, inputs[stage.name], assignments, zips))
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
