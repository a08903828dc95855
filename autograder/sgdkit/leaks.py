"""Find solution and hidden-test lines that would reach students, naming the file and line where each sits.

A stage's folder must hold no solution or hidden-test line of it or a later
stage (`secrets_for`, `find_leaks`), and no line of a question's reference
answer may sit outside its markers, in the master (`notebook_answer_leaks`)
or around the library's EXERCISE block (`library_answer_leaks`).
"""
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .assign import BuildJob
from .sources import (BuildError, Exercise, Library, LibraryFile, Master, Question, StageSource, exercises,
                      is_trivial, owners_of)


def secrets_for(stage: StageSource, stages: list[StageSource], masters: dict[str, Master],
                library: Library) -> dict[str, str]:
    """Lines that must not reach this stage's folder: solutions and hidden tests of it and later stages."""
    position = [s.name for s in stages].index(stage.name)
    owners = owners_of(masters)
    shown = {line.strip() for parts in library.values() for part in parts
             if not isinstance(part, Exercise) for line in part}
    for earlier in stages[:position + 1]:
        shown |= masters[earlier.name].public
    secret: dict[str, str] = {}
    for exercise in (e for blocks in exercises(library).values() for e in blocks):
        owner = owners.get(exercise.question)  # None: no stage asks it yet, so every stage gets a stub
        if owner is None or [s.name for s in stages].index(owner) >= position:
            for line in exercise.body:
                if owner is None or line.strip() not in masters[owner].public:
                    secret.setdefault(line.strip(), exercise.where)
    for later in stages[position:]:
        secret.update(masters[later.name].secret)
    return {line: where for line, where in secret.items() if line not in shown and not is_trivial(line)}


def _strings(value: Any, label: str) -> Iterator[tuple[str, str]]:
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


def _placed_lines(path: Path, rel: str) -> Iterator[tuple[str, str]]:
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
    found: dict[str, str] = {}
    for block in blocks:
        for index, line in enumerate(block.body):
            if not is_trivial(line.strip()):
                found.setdefault(line.strip(), block.body_where(index))
    return {**question.answer, **found}


def notebook_answer_leaks(job: BuildJob) -> list[str]:
    """Answer lines of this stage's questions that students see, wherever the master's markers are.

    Both the master (lines outside SOLUTION regions, public tests included) and
    the student notebook otter wrote are searched. A line the master also shows
    in a prompt or a given cell (outside solution cells and tests) is given
    away on purpose and allowed.
    """
    master, blocks = job.masters[job.stage.name], exercises(job.library)
    rel = f"assignments/{job.stage.name}/{job.stage.notebook}"
    assert job.view is not None  # write_student, which runs before this step, sets it (or the caller gave it)
    reached: dict[str, str] = {}
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


def _numbered(parts: LibraryFile) -> list[tuple[int, str, Exercise | None]]:
    """A library file's lines again, as (1-based number, line, the exercise it belongs to or None)."""
    out: list[tuple[int, str, Exercise | None]] = []
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


def library_answer_leaks(library: Library, masters: dict[str, Master]) -> list[str]:
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


def check_leaks(job: BuildJob) -> None:
    """Fail if an answer line of this stage, or a solution or hidden-test line of a later one, is in the student view."""
    assert job.view is not None  # write_student, which runs before this step, sets it (or the caller gave it)
    secret = secrets_for(job.stage, job.stages, job.masters, job.library)
    leaks = notebook_answer_leaks(job) + find_leaks(job.view, secret, f"assignments/{job.stage.name}")
    if leaks:
        raise BuildError("solution or hidden-test lines reach the student version:\n  " + "\n  ".join(leaks))
