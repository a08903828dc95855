"""`sgdkit similarity`: the pairs of a stage's submissions whose own code is unusually alike, for a person to look at.

A flag is never a grade: it says where to look, and a person decides. Per submission (nothing is run):

1. read   -- submissions.py reads the notebook; an unreadable one, another stage's, or one holding
             nothing but the starter code is skipped with a note;
2. strip  -- fingerprint.py keeps the code that is not the starter's; copydetect tokenises it
             (names, strings, comments and whitespace folded, so renaming, recommenting and
             reformatting change nothing) and fingerprints every passage of K tokenised
             characters, less those of the starter notebook and of the stage's match/ library.

Then for each pair (fairness: both rules keep what every correct answer shares from flagging):

3. length -- only shared passages that run unbroken for at least MIN_RUN tokenised characters
             (about four lines) count: a one-line `mean` never does;
4. rarity -- each counted fingerprint weighs ln((N + 1) / df), df being how many of the N
             submissions hold it: what most of the class wrote weighs next to nothing, what two
             students alone share weighs most;
5. score  -- the weight the pair shares over the weight of the smaller submission, in [0, 1];
             a pair scoring THRESHOLD or more is flagged.

Writes DIR/similarity.csv (flagged pairs, highest first) and DIR/similarity.json (the same
pairs with both answers and their shared passages, which `sgdkit report DIR` shows).
"""
import argparse
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import ASSIGNMENTS
from .fingerprint import K, Answer, in_code, read_answers
from .outputs import write_atomic, write_csv

log = logging.getLogger(__name__)

# A shared passage counts only if it runs unbroken this long (tokenised characters; about four lines).
MIN_RUN = 100
# Calibrated on eight generated classes of 600 (examples/similar_class.py, seeds 0-7, 8 copies each):
# the 64 copies, each with one function rewritten, scored 0.736 and more; honest pairs at most 0.597.
THRESHOLD = 0.65
# Counted passages held by at most this share of the class (never fewer than 2) are marked strongly
# in the report, and the questions they sit in are the pair's questions.
RARE_SHARE = 0.1
COLUMNS = ["file_a", "file_b", "score", "questions"]


@dataclass
class Pair:
    """One flagged pair, as similarity.csv and .json show it."""

    file_a: str
    file_b: str
    score: float
    shared: int = 0  # tokenised characters of counted passages (the smaller side's)
    questions: list[str] = field(default_factory=list)
    spans: tuple[list[list[Any]], list[list[Any]]] = ([], [])  # [start, end, "rare" | "common"] in each code


# ---------------------------------------------------------------- scoring


@dataclass
class Class:
    """The class-wide numbers a pair's score needs."""

    answers: list[Answer]
    weight: dict[int, float]  # fingerprint -> ln((N + 1) / df)
    df: dict[int, int]  # fingerprint -> how many submissions hold it
    total: np.ndarray  # each answer's summed weight


def bounds(answers: list[Answer]) -> tuple[np.ndarray, Class]:
    """(N x N upper bounds of the pair scores: every shared fingerprint counted, however short its passage; the Class).

    A pair's score (with MIN_RUN) is never above its bound, so only pairs whose bound
    reaches a threshold need scoring one by one.
    """
    n = len(answers)
    held = [np.fromiter(a.hashes, dtype=np.int64, count=len(a.hashes)) for a in answers]
    every = np.concatenate(held) if held else np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(n), [len(h) for h in held])
    unique, column, df = np.unique(every, return_inverse=True, return_counts=True)
    weight = np.log((n + 1) / df)
    total = np.bincount(owner, weights=weight[column], minlength=n)
    # Only fingerprints held twice or more can be shared: one column each, in blocks to bound memory.
    shared_cols = np.flatnonzero(df >= 2)
    position = np.full(len(unique), -1)
    position[shared_cols] = np.arange(len(shared_cols))
    keep = position[column] >= 0
    rows, cols = owner[keep], position[column[keep]]
    common = np.zeros((n, n))
    block = 4096
    for first in range(0, len(shared_cols), block):
        inside = (cols >= first) & (cols < first + block)
        matrix = np.zeros((n, min(block, len(shared_cols) - first)))
        matrix[rows[inside], cols[inside] - first] = 1.0
        common += (matrix * weight[shared_cols[first:first + block]]) @ matrix.T
    smaller = np.minimum.outer(total, total)
    upper = np.divide(common, smaller, out=np.zeros_like(common), where=smaller > 0)
    np.fill_diagonal(upper, 0.0)
    keys = unique.tolist()
    return np.clip(upper, 0.0, 1.0), Class(answers, dict(zip(keys, weight.tolist())), dict(zip(keys, df.tolist())),
                                           total)


def _runs(answer: Answer, hashes: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, fingerprints) of the tokenised passages `hashes` cover: one run per unbroken stretch.

    `fingerprints[i]` is the array of fingerprints inside run i (as copydetect's get_copied_slices
    joins them: k-grams that overlap or touch make one run).
    """
    pairs = sorted((p, h) for h in hashes for p in answer.positions.get(h, []))
    if not pairs:
        empty = np.zeros(0, dtype=int)
        return empty, empty, np.empty(0, dtype=object)
    at = np.array([p for p, _ in pairs])
    held = np.array([h for _, h in pairs], dtype=np.int64)
    new = np.concatenate([[True], np.diff(at) > K - 1])
    firsts = np.flatnonzero(new)
    lasts = np.concatenate([firsts[1:] - 1, [len(at) - 1]])
    members = np.empty(len(firsts), dtype=object)
    members[:] = [held[a:b + 1] for a, b in zip(firsts, lasts)]
    return at[firsts], at[lasts] + K, members


def _counted(answer: Answer, shared: set[int]) -> set[int]:
    """The shared fingerprints that sit in a run of at least MIN_RUN tokenised characters in this answer."""
    starts, ends, members = _runs(answer, shared)
    return {int(h) for start, end, inside in zip(starts, ends, members) if end - start >= MIN_RUN for h in inside}


def score(cls: Class, a: int, b: int) -> tuple[float, set[int]]:
    """(the pair's score, the fingerprints it counts): shared passages of MIN_RUN or more on both sides, rarity-weighted."""
    first, second = cls.answers[a], cls.answers[b]
    shared = set(first.hashes & second.hashes)
    counted = _counted(first, shared) & _counted(second, shared)
    smaller = min(cls.total[a], cls.total[b])
    value = sum(cls.weight[h] for h in counted) / smaller if smaller > 0 else 0.0
    return min(1.0, value), counted


def ranked(answers: list[Answer], floor: float) -> tuple[list[tuple[float, int, int]], Class]:
    """([(score, i, j)] of every pair whose score may reach `floor`, highest first; the Class)."""
    upper, cls = bounds(answers)
    found = [(score(cls, int(i), int(j))[0], int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(upper >= floor, 1)))]
    return sorted(found, key=lambda t: (-t[0], answers[t[1]].file, answers[t[2]].file)), cls


def _whole_words(code: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to whole words: a passage of tokenised characters may start inside a keyword."""
    while start > 0 and (code[start - 1].isalnum() or code[start - 1] == "_"):
        start -= 1
    while end < len(code) and (code[end].isalnum() or code[end] == "_") and end > start and \
            (code[end - 1].isalnum() or code[end - 1] == "_"):
        end += 1
    return start, end


def _spans(answer: Answer, strong: set[int], shared: set[int]) -> tuple[list[list[Any]], list[str]]:
    """([start, end, "rare" | "common"] runs of shared code in the answer; the questions holding rare runs)."""
    kind = np.zeros(len(answer.code) + 1, dtype=np.int8)  # 0 not shared, 1 common, 2 rare
    for value, hashes in ((1, shared), (2, strong)):
        starts, ends, _ = _runs(answer, hashes)
        for start, end in zip(in_code(answer.offsets, starts), in_code(answer.offsets, ends)):
            start, end = _whole_words(answer.code, int(start), int(end))
            kind[start:end] = np.maximum(kind[start:end], value)
    cuts = [0, *(np.flatnonzero(np.diff(kind)) + 1).tolist(), len(kind)]
    runs = [(a, b, "rare" if kind[a] == 2 else "common") for a, b in zip(cuts, cuts[1:]) if kind[a]]
    questions = [q for s, e, q in answer.cells if q and any(k == "rare" and a < e and s < b for a, b, k in runs)]
    return [list(run) for run in runs], questions


def flag(answers: list[Answer], threshold: float = THRESHOLD) -> list[Pair]:
    """The pairs scoring `threshold` or more, highest first (ties by file names), with their shared passages."""
    found, cls = ranked(answers, threshold)
    rare_at = max(2, math.ceil(RARE_SHARE * len(answers)))
    pairs = []
    for value, i, j in found:
        if value < threshold:
            continue
        first, second = sorted((answers[i], answers[j]), key=lambda x: x.file)
        _, counted = score(cls, i, j)
        strong = {h for h in counted if cls.df[h] <= rare_at} or counted
        shared = set(first.hashes & second.hashes)
        (spans_a, q_a), (spans_b, q_b) = _spans(first, strong, shared), _spans(second, strong, shared)
        length = min(_counted_length(x, counted) for x in (first, second))
        pairs.append(Pair(first.file, second.file, round(float(value), 3), length, list(dict.fromkeys(q_a + q_b)),
                          (spans_a, spans_b)))
    return pairs


def _counted_length(answer: Answer, counted: set[int]) -> int:
    """Tokenised characters of the runs of `counted` that reach MIN_RUN."""
    starts, ends, _ = _runs(answer, counted)
    return int(sum(e - s for s, e in zip(starts, ends) if e - s >= MIN_RUN))


# ---------------------------------------------------------------- the verb


def similarity(paths: Iterable[Path | str], stage: str, out_dir: Path | str, threshold: float = THRESHOLD,
               assignments: Path = ASSIGNMENTS, workers: int | None = None) -> dict[str, Any]:
    """Compare every pair of the stage's submissions at `paths`; write out_dir/similarity.{csv,json}; return the JSON."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"--threshold {threshold}: a score is above 0 and at most 1")
    answers, skipped = read_answers(paths, stage, assignments, workers)
    pairs = flag(answers, threshold)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "similarity.csv", COLUMNS,
              [[p.file_a, p.file_b, f"{p.score:.3f}", "; ".join(p.questions)] for p in pairs])
    involved = {f for p in pairs for f in (p.file_a, p.file_b)}
    data = {"stage": stage, "threshold": threshold, "min_run": MIN_RUN, "k": K,
            "compared": len(answers), "skipped": [{"file": f, "why": why} for f, why in skipped],
            "pairs": [{"file_a": p.file_a, "file_b": p.file_b, "score": p.score, "shared": p.shared,
                       "questions": p.questions, "spans_a": p.spans[0], "spans_b": p.spans[1]} for p in pairs],
            "code": {a.file: a.code for a in answers if a.file in involved}}
    write_atomic(out / "similarity.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return data


def load(folder: Path | str) -> dict[str, Any] | None:
    """DIR/similarity.json as `similarity` wrote it, or None if there is none."""
    try:
        data = json.loads((Path(folder) / "similarity.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pairs"), list) else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, help="stage of the submissions, e.g. 02-descent")
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for similarity.csv and similarity.json (the grade folder, for `sgdkit report`)")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="submitted notebooks (.ipynb or otter export .zip) or folders of them")
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help=f"flag pairs scoring at least this, above 0 and at most 1 (default {THRESHOLD})")
    parser.add_argument("--workers", type=int, default=None, help="processes reading the notebooks (default: cores)")


def main(args: argparse.Namespace) -> int:
    try:
        data = similarity(args.paths, args.stage, args.out, args.threshold, workers=args.workers)
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    print(f"compared {data['compared']} submissions ({len(data['skipped'])} skipped): "
          f"{len(data['pairs'])} pairs flagged for a person to look at, in {Path(args.out) / 'similarity.csv'}")
    return 0
