"""Answer a student notebook the way a student would: how the sample class and the bug corpus are made.

A master notebook's SOLUTION regions each sit inside one top-level function;
the student version has a line `...` there. `fill` types an answer (the
solution, a planted bug, a valid alternative) into the region of the function
it names.
"""
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat


def _function_at(lines: list[str], index: int) -> str | None:
    """The top-level def enclosing line `index`, or None."""
    for line in reversed(lines[:index]):
        found = re.match(r"(?:async\s+)?def\s+(\w+)", line)
        if found:
            return found.group(1)
    return None


def solution_regions(master: Path | str) -> dict[str, tuple[str | None, str]]:
    """{function: (question, dedented solution text)} from a master notebook's SOLUTION regions."""
    regions: dict[str, tuple[str | None, str]] = {}
    question: str | None = None
    for cell in nbformat.read(master, as_version=4).cells:
        if cell.cell_type == "raw":
            begin = re.match(r"\s*#\s*BEGIN QUESTION\s*\n\s*name:\s*(\S+)", cell.source)
            if begin:
                question = begin.group(1)
            elif re.match(r"\s*#\s*END QUESTION", cell.source):
                question = None  # regions outside questions (a plot helper) are ungraded
        if cell.cell_type != "code" or "# BEGIN SOLUTION" not in cell.source:
            continue
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if line.strip() == "# BEGIN SOLUTION":
                end = next(j for j in range(i, len(lines)) if lines[j].strip() == "# END SOLUTION")
                function = _function_at(lines, i)
                if function is None:
                    raise ValueError(f"{master}: a SOLUTION region outside any function:\n{cell.source}")
                if function in regions:
                    raise ValueError(f"{master}: function {function} has two SOLUTION regions")
                regions[function] = (question, textwrap.dedent("\n".join(lines[i + 1:end])) + "\n")
    return regions


Edits = Mapping[str, Sequence[tuple[str, str]]]


def edit(source: str, edits: Edits) -> str:
    """`source` with the (old, new) pairs of every function in {function: pairs} that it defines replaced.

    An answer may change the code the notebook gives around its region too
    (the forward pass of Matrix.mean, say); each `old` must occur exactly once.
    """
    for function, pairs in edits.items():
        if not re.search(rf"^def {function}\(", source, re.M):
            continue
        for old, new in pairs:
            if source.count(old) != 1:
                raise ValueError(f"{old!r} occurs {source.count(old)} times in the cell of {function}, not once")
            source = source.replace(old, new)
    return source


def fill(student: Mapping[str, Any], answers: Mapping[str, str],
         written: str | None = None, edits: Edits | None = None) -> nbformat.NotebookNode:
    """A copy of the student notebook with each `...` region answered from {function: text}.

    Regions whose function has no answer keep their `...`; `written` replaces
    the placeholder of a written (manually graded) answer; `edits` changes the
    code around a region (`edit`).
    """
    nb = nbformat.from_dict(json.loads(json.dumps(student)))
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "otter_answer_cell" in cell.metadata.get("tags", []):
            cell.source = written or cell.source
        if cell.cell_type != "code":
            continue
        lines = edit(cell.source, edits or {}).splitlines()
        out: list[str] = []
        for i, line in enumerate(lines):
            function = _function_at(lines, i) if line.strip() == "..." else None
            text = None if function is None else answers.get(function)
            if text is None:
                out.append(line)
            else:
                indent = line[: len(line) - len(line.lstrip())]
                out += [indent + row if row.strip() else "" for row in text.rstrip("\n").splitlines()]
        cell.source = "\n".join(out)
    return nb
