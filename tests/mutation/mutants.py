"""Every mutant of every exercise region, made by mutmut's operators, and the listed equivalents.

An exercise region is a master notebook's SOLUTION region that a question
grades; the library's `# BEGIN EXERCISE` blocks are the same text
(`library_blocks_are_regions` checks it), so each mutant is a mutant of both.
mutmut's own runner works on an importable package under pytest; these
regions are answers typed into a notebook and judged by probes, so only its
mutant generator is used: each region is wrapped in a function, mutmut lists
its mutations, and each one, applied alone, is one mutant answer.
"""
import contextlib
import difflib
import re
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import checks
from mutmut import configuration
from mutmut.mutation.file_mutation import create_mutations
from sgdkit import SOLUTIONS

from .inprocess import graded_regions

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT = ROOT / "tests" / "corpus" / "equivalent.md"
WRAPPER = "def _region():\n"


@dataclass(frozen=True)
class Mutant:
    """One mutant answer: a region with one of mutmut's mutations applied."""

    id: str  # "<function>#<n>": the n-th mutation mutmut makes in that function's region
    stage: str
    question: str
    function: str
    text: str  # the mutated region, as a student would type it
    change: str  # the region's changed lines, as mutated


@cache
def all_mutants():
    """Every mutant of every graded region of every stage, in stage and notebook order."""
    with contextlib.chdir(ROOT):  # mutmut reads its settings ([tool.mutmut]) from ./pyproject.toml
        configuration.config()
    found = []
    for stage in checks.STAGES:
        for function, (question, text) in graded_regions(stage).items():
            found += [Mutant(f"{function}#{n}", stage, question, function, mutated, _change(text, mutated))
                      for n, mutated in enumerate(_mutations(text), start=1)]
    return found


def _mutations(text):
    """The region `text` with each of mutmut's mutations applied alone."""
    code = WRAPPER + textwrap.indent(text, "    ")
    module, mutations, _, _ = create_mutations("region.py", code)
    return [textwrap.dedent(module.deep_replace(m.original_node, m.mutated_node).code[len(WRAPPER):])
            for m in mutations]


def _change(before, after):
    """The mutated lines of `after`, stripped and joined with ' / '."""
    diff = difflib.ndiff(before.splitlines(), after.splitlines())
    return " / ".join(line[2:].strip() for line in diff if line.startswith("+ "))


def library_blocks_are_regions():
    """[(file, question)] of the library's EXERCISE blocks that are no graded region's text (none, we hope)."""
    regions = {(q, text) for stage in checks.STAGES for q, text in graded_regions(stage).values()}
    block = re.compile(r"^ *# BEGIN EXERCISE (\w+)\n(.*?)^ *# END EXERCISE", re.M | re.S)
    return [(path.name, question) for path in sorted((SOLUTIONS / "match").glob("*.py"))
            for question, text in block.findall(path.read_text())
            if (question, textwrap.dedent(text)) not in regions]


@dataclass(frozen=True)
class Equivalent:
    """One entry of equivalent.md."""

    id: str
    change: str
    reason: str


def equivalents(path=EQUIVALENT):
    """{mutant id: Equivalent} from the table of tests/corpus/equivalent.md."""
    found = {}
    for line in path.read_text().splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and re.fullmatch(r"`\w+#\d+`", cells[0]):
            mutant_id, change, reason = cells[0].strip("`"), cells[2].strip("`"), cells[3]
            if mutant_id in found:
                raise ValueError(f"{path.name}: {mutant_id} is listed twice")
            found[mutant_id] = Equivalent(mutant_id, change, reason)
    return found


def equivalent_problems(mutants, listed):
    """What is wrong with the list: unknown or stale ids, a missing reason."""
    by_id = {m.id: m for m in mutants}
    problems = [f"{e.id}: no such mutant" for e in listed.values() if e.id not in by_id]
    problems += [f"{e.id}: the listed change {e.change!r} is now {by_id[e.id].change!r}"
                 for e in listed.values() if e.id in by_id and by_id[e.id].change != e.change]
    return problems + [f"{e.id}: no reason given" for e in listed.values() if len(e.reason) < 10]


def spread(mutants, listed):
    """{question: how many of the listed equivalents are its mutants}, most first."""
    question = {m.id: m.question for m in mutants}
    counts = {}
    for mutant_id in listed:
        if mutant_id in question:
            counts[question[mutant_id]] = counts.get(question[mutant_id], 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))
