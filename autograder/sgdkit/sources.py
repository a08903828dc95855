"""Parse the master notebooks and the reference library into stages, questions and exercises.

A stage is a folder solutions/NN-name holding one otter-assign master
notebook; an exercise is a `# BEGIN EXERCISE <question>` block of a library
file under solutions/match/. Everything here only reads; a source the build
cannot use raises BuildError naming its file and line.
"""
import ast
import re
import string
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAGE_FOLDER = re.compile(r"\d\d-[a-z0-9][a-z0-9-]*")


class BuildError(Exception):
    """A stage cannot be built; the message says where and why."""


@dataclass(frozen=True)
class StageSource:
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

    stage: StageSource
    kernel: str
    questions: list[Question]
    public: set[str]  # stripped lines a student is shown
    secret: dict[str, str]  # stripped solution / hidden-test line -> where it comes from
    given: set[str] = field(default_factory=set)  # shown outside solution cells and tests: prompts, given code
    shown_at: dict[str, str] = field(default_factory=dict)  # stripped shown line -> where the master shows it
    libraries: list[str] = field(default_factory=list)  # installed modules its code imports, such as matplotlib.pyplot


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


# A library file as runs of plain lines and Exercise blocks, in order; the library: posix path under match/ -> file.
LibraryFile = list[list[str] | Exercise]
Library = dict[str, LibraryFile]
Numbered = list[tuple[int, str]]  # lines of a cell as (1-based number, line)


def find_stages(solutions: Path) -> list[StageSource]:
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
            stages.append(StageSource(folder.name, masters[0]))
    return stages


def _block_marker(cell: Any) -> tuple[str, str] | None:
    """("BEGIN" | "END", "QUESTION" | ...) for an otter block boundary cell, else None."""
    if cell.cell_type != "raw" or not cell.source.strip():
        return None
    first = cell.source.strip().splitlines()[0]
    match = re.fullmatch(r"#\s*(BEGIN|END)\s+(QUESTION|SOLUTION|TESTS|PROMPT)\s*", first, re.I)
    return (match.group(1).upper(), match.group(2).upper()) if match else None


def _test_config(source: str) -> dict[str, Any]:
    """The YAML between an otter test cell's BEGIN/END TEST CONFIG lines."""
    import yaml

    match = re.search(r'^"""\s*# BEGIN TEST CONFIG\n(.*?)^"""\s*# END TEST CONFIG', source, re.S | re.M)
    return (yaml.safe_load(match.group(1)) or {}) if match else {}


def is_trivial(line: str) -> bool:
    """True for a stripped line that tells nothing: blank, `...`, brackets, `pass`."""
    return not line.strip(string.punctuation + string.whitespace) or line in {
        "pass", "return", "else:", "try:", "finally:", "continue", "break",
    }


def _split_solution(lines: list[str], where: str) -> tuple[Numbered, list[Numbered]]:
    """(shown lines, solution regions) of a code cell by otter's in-cell markers, as (1-based number, line).

    A region is the run of lines between `# BEGIN SOLUTION` and `# END SOLUTION`,
    or one line ending in `# SOLUTION`.
    """
    shown: Numbered = []
    regions: list[Numbered] = []
    region: Numbered | None = None
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
    found: dict[str, TestCell] = {}
    for number, line in enumerate(lines, 1):
        match = re.match(r"def test_(\w+)\(", line)
        if match:
            found[match.group(1)] = TestCell(match.group(1), hidden, f"{where} line {number}")
    return found


def parse_master(stage: StageSource) -> Master:
    """Questions, shown lines and secret lines of a stage's master notebook."""
    import nbformat
    import yaml

    nb = nbformat.read(stage.master, as_version=4)
    open_blocks: list[str] = []
    questions: list[Question] = []
    public: set[str] = set()
    secret: dict[str, str] = {}
    test_points: dict[str, float] = {}
    given: set[str] = set()
    shown_at: dict[str, str] = {}
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
            if question is None:
                raise BuildError(f"{where}: a TESTS block belongs inside a QUESTION block")
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
    secret = {line: w for line, w in secret.items() if line not in public and not is_trivial(line)}
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    libraries = imported_libraries([cell.source for cell in nb.cells if cell.cell_type == "code"])
    return Master(stage, kernel, questions, public, secret, given, shown_at, libraries)


# Not preloaded: the workdir's own library, and otter, which a graded kernel gets as an inert stand-in.
NOT_LIBRARIES = {"match", "otter", "sgdkit_checks"}


def imported_libraries(sources: list[str]) -> list[str]:
    """The modules outside the standard library that these cells import at their top level, sorted."""
    names: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:  # a cell with IPython magic: it is not where a notebook imports its libraries
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return sorted(name for name in names
                  if name.split(".")[0] not in sys.stdlib_module_names | NOT_LIBRARIES)


def _where_lines(numbered: Numbered, where: str, seen: dict[str, str]) -> dict[str, str]:
    """{stripped line: "<where> line N"} for the telling lines of `numbered` not already in `seen`."""
    found: dict[str, str] = {}
    for number, line in numbered:
        if not is_trivial(line.strip()) and line.strip() not in seen:
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


def split_exercises(text: str, origin: str) -> LibraryFile:
    """A library file as runs of plain lines and Exercise blocks, in order."""
    lines, index = text.splitlines(), 0
    parts: LibraryFile = []
    run: list[str] = []
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


def library_files(match_dir: Path) -> Library:
    """Every .py file of the reference library (posix path under match/) split into exercises."""
    return {
        path.relative_to(match_dir).as_posix(): split_exercises(
            path.read_text(), f"solutions/match/{path.relative_to(match_dir).as_posix()}"
        )
        for path in sorted(match_dir.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def exercises(library: Library) -> dict[str, list[Exercise]]:
    """question -> its Exercise blocks (a question may span several functions), in library order."""
    found: dict[str, list[Exercise]] = {}
    for parts in library.values():
        for part in parts:
            if isinstance(part, Exercise):
                found.setdefault(part.question, []).append(part)
    return found


def owners_of(masters: dict[str, Master]) -> dict[str, str]:
    """question -> name of the stage whose master notebook asks it."""
    owners: dict[str, str] = {}
    for master in masters.values():
        for question in master.questions:
            if question.name in owners:
                raise BuildError(f"question {question.name} is in {owners[question.name]} and {master.stage.name}")
            owners[question.name] = master.stage.name
    return owners
