"""Read a stage's submissions as the code their students wrote, tokenised and fingerprinted by copydetect.

Nothing is run. A notebook's own code is its code cells less those identical to the
starter notebook's; copydetect tokenises it with Pygments (every name becomes V, every
string S; comments and whitespace go) and fingerprints every passage of K tokenised
characters. Each stretch between lines of the starter (a signature, a docstring) is
fingerprinted on its own, and the fingerprints of the starter notebook and of the
stage's match/ library (boilerplate) are removed.
"""
import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import ASSIGNMENTS
from .outputs import visible
from .sources import is_trivial
from .stage import Stage
from .submissions import Rejected, check_stage, code_cells, find_submissions, parse_notebook, read_notebook

log = logging.getLogger(__name__)

# copydetect's noise threshold (its default): the length of a fingerprinted passage, in tokenised characters.
K = 25
CHECK = re.compile(r"""grader\s*\.\s*check\s*\(\s*["'](\w+)["']""")


@dataclass
class Answer:
    """What one submission wrote: its own code cells joined, which question each cell answers, its fingerprints."""

    file: str
    code: str
    cells: list[tuple[int, int, str]]  # (start, end, question or "") of each cell in `code`
    offsets: np.ndarray  # copydetect's map from tokenised positions back to positions in `code`
    positions: dict[int, list[int]]  # fingerprint -> where it starts in the tokenised code
    hashes: frozenset[int] = frozenset()  # its fingerprints less the boilerplate


def starter(stage: str, assignments: Path = ASSIGNMENTS) -> tuple[Stage, list[str], str]:
    """(the stage as check_stage needs it, the starter notebook's code cells, its match/ library's text)."""
    folder = assignments / stage
    notebooks = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    if len(notebooks) != 1:
        known = sorted(p.parent.name for p in assignments.glob("*/*.ipynb"))
        raise FileNotFoundError(f"no student notebook for stage {stage!r} in {folder} (stages: {known or 'none'})")
    others = {p.name: p.parent.name for p in assignments.glob("*/*.ipynb") if p.parent.name != stage}
    spec = Stage(stage, notebooks[0].name, [], [], {}, "", None, others=others)
    nb, _ = parse_notebook(notebooks[0].read_bytes())
    library = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted((folder / "match").rglob("*.py"))
                          if "__pycache__" not in p.parts)
    return spec, [source for _, source in code_cells(nb)], library


def _questions_of_cells(nb: Any) -> dict[int, str]:
    """{code cell number (as code_cells counts): the question of the next grader.check cell} ('' after the last)."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    question, found = "", {}
    for number in range(len(sources), 0, -1):
        check = CHECK.search(sources[number - 1])
        question = check.group(1) if check else question
        found[number] = question
    return found


@dataclass
class Given:
    """The starter notebook as the comparison needs it: its code cells and their telling lines."""

    cells: set[str]  # stripped sources
    lines: set[str]  # stripped lines that tell something (not blank, not `...`)

    @classmethod
    def of(cls, sources: list[str]) -> "Given":
        lines = {line.strip() for source in sources for line in source.splitlines()}
        return cls({source.strip() for source in sources}, {line for line in lines if not is_trivial(line)})


def own_code(nb: Any, given: Given) -> tuple[str, list[tuple[int, int, str]], list[tuple[int, int]]]:
    """(the code cells that are not starter cells, joined; each one's (start, end, question); its stretches).

    A stretch is a run of a cell's lines between lines of the starter (a signature, a docstring):
    each is fingerprinted on its own, so no passage straddles given code, and moving a whole
    function changes no fingerprint.
    """
    questions = _questions_of_cells(nb)
    parts, cells, stretches, at = [], [], [], 0
    for number, source in code_cells(nb):
        if source.strip() in given.cells:
            continue
        question = questions.get(number, "")
        # A comment: tokenising drops it, so it never matches; it tells the reader where the cell was.
        text = f"# cell {number}" + (f" ({question})" if question else "") + "\n" + source.rstrip() + "\n\n"
        start = None
        for line in text.splitlines(keepends=True):
            if line.strip() in given.lines:
                if start is not None:
                    stretches.append((start, at))
                start = None
            elif start is None:
                start = at
            at += len(line)
        if start is not None:
            stretches.append((start, at))
        parts.append(text)
        cells.append((at - len(text), at, question))
    return "".join(parts), cells, stretches


def tokenise(code: str, stretches: list[tuple[int, int]]) -> tuple[str, np.ndarray, list[tuple[int, int]]]:
    """(copydetect's tokenised code: names V, strings S, no comments or whitespace; its offsets back to
    positions in `code`; the [start, end) of each stretch in the tokens)."""
    from copydetect.utils import filter_code

    tokens, offsets = filter_code(code, "answer.py", language="python")
    where = in_code(offsets, np.arange(len(tokens)))
    pieces = [(int(a), int(b)) for a, b in zip(np.searchsorted(where, [s for s, _ in stretches]),
                                                np.searchsorted(where, [e for _, e in stretches]))]
    return tokens, offsets, pieces


def in_code(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Tokenised positions as positions in the code, as copydetect's compare_files maps them."""
    if not len(offsets):
        return positions
    return positions + offsets[:, 1][np.clip(np.searchsorted(offsets[:, 0], positions), 0, offsets.shape[0] - 1)]


def _fingerprints(tokens: str, pieces: list[tuple[int, int]]) -> dict[int, list[int]]:
    """{fingerprint: its positions} of every K-character passage inside one piece of the tokens.

    win_size=1 keeps every fingerprint: copydetect hashes with Python's own hash(), salted per
    process, so winnowing would keep a different subset every run (and in every worker).
    """
    from copydetect.utils import get_document_fingerprints

    found: dict[int, list[int]] = {}
    for first, end in pieces:
        for fingerprint, where in get_document_fingerprints(tokens[first:end], K, 1)[1].items():
            found.setdefault(int(fingerprint), []).extend(int(p) + first for p in where)
    return found


def _prepare(sub: Any, spec: Stage, given: Given) -> tuple[str, Any]:
    """("skip", why) or ("ok", (code, cells, tokens, offsets, pieces)) for one submission; runs in a worker."""
    try:
        nb, _ = parse_notebook(read_notebook(sub.path))
        check_stage(nb, spec)
    except Rejected as exc:
        return "skip", f"{exc.kind}: {exc}"
    code, cells, stretches = own_code(nb, given)
    return "ok", (code, cells, *tokenise(code, stretches))


def read_answers(paths: Iterable[Path | str], stage: str, assignments: Path = ASSIGNMENTS,
                 workers: int | None = None) -> tuple[list[Answer], list[tuple[str, str]]]:
    """(every submission's own code, fingerprinted; [(file, why)] for each one skipped)."""
    spec, starter_cells, library = starter(stage, assignments)
    given = Given.of(starter_cells)
    # Boilerplate is removed here rather than by copydetect's option: its np.intersect1d(assume_unique=True)
    # also drops repeated passages of a submission that are not boilerplate at all.
    text = "\n\n".join(starter_cells) + "\n\n" + library
    tokens, _, pieces = tokenise(text, [(0, len(text))])
    boilerplate = set(_fingerprints(tokens, pieces))
    subs = find_submissions(paths)
    workers = max(1, min(workers or os.cpu_count() or 1, len(subs) // 50 + 1))  # a pool pays from ~50 on
    prepare = partial(_prepare, spec=spec, given=given)
    if workers == 1:
        prepared = list(map(prepare, subs))
    else:
        with ProcessPoolExecutor(workers) as pool:
            prepared = list(pool.map(prepare, subs, chunksize=16))
    answers, skipped = [], []
    for sub, (status, what) in zip(subs, prepared):
        if status == "skip":
            skipped.append((sub.file, what))
            continue
        code, cells, tokens, offsets, pieces = what
        positions = _fingerprints(tokens, pieces)  # hashed here, in one process: hash() is salted per process
        hashes = frozenset(positions) - boilerplate
        if not hashes:
            own = sum(b - a for a, b in pieces)
            skipped.append((sub.file, "blank: nothing but the starter code" if not own else
                            f"too short to compare: no passage of its own reaches {K} tokenised characters"))
            continue
        answers.append(Answer(sub.file, code, cells, offsets, positions, hashes))
    for file, why in skipped:
        log.info("skipped %s (%s)", visible(file), visible(why))
    return answers, skipped
