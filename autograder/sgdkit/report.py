"""`sgdkit report`: graded folders -> one self-contained report.html, plots inlined.

A graded folder is what `sgdkit grade --out DIR` writes: DIR/grades.csv (one
row per submission) and DIR/results/*.json (every test of every question).
The report shows, per stage, where the class struggled: the spread of totals,
each question's pass rate, the tests failed most often with their hints, tests
nobody or everybody passed, the submissions that could not be graded fully, and,
when `sgdkit similarity --out DIR` wrote DIR/similarity.json, the pairs of
submissions flagged as alike, each opening into both answers side by side.
"""
import argparse
import html
import logging
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import ZIPS, similarity
from .outputs import write_atomic
from .plots import plot_pass_rates, plot_totals
from .results import NOT_RUN, Graded, csv_float, load_graded
from .stage import read_summary

log = logging.getLogger(__name__)

# How many of the most-failed tests a stage lists.
TOP_FAILED = 10

# ---------------------------------------------------------------- statistics


@dataclass
class Tally:
    """How one test fared across the submissions that ran it."""

    question: str
    name: str
    hidden: bool
    points: float
    hint: str
    passed: int = 0
    failed: int = 0

    @property
    def ran(self) -> int:
        return self.passed + self.failed


def tally_tests(graded: Graded) -> list[Tally]:
    """Tally for every test of the submissions that ran, in question then test order."""
    stats: dict[tuple[str, str], Tally] = {}
    for result in graded.results.values():
        if result["status"] in NOT_RUN:  # their tests "failed" without being tried
            continue
        for question, scored in result.get("questions", {}).items():
            for test in scored.get("tests", []):
                key = (question, test["name"])
                if key not in stats:
                    stats[key] = Tally(question, test["name"], bool(test.get("hidden")),
                                           test.get("points", 0), "")
                entry = stats[key]
                if test.get("passed"):
                    entry.passed += 1
                else:
                    entry.failed += 1
                    # A hidden test's hint is the same for everyone; a public
                    # test's message shows one student's value, so keep the first.
                    entry.hint = entry.hint or test.get("hint") or _assertion(test.get("message") or "")
    order = {q: i for i, q in enumerate(graded.questions)}
    return sorted(stats.values(), key=lambda s: (order.get(s.question, len(order)), s.question))


def _assertion(message: str) -> str:
    """The assert's own message out of otter's failure text (which also quotes the test's code)."""
    return message.rpartition("AssertionError:")[2].strip()[:400] or message[:400]


def flags(stats: Iterable[Tally]) -> list[tuple[Tally, str]]:
    """(test, message) for every test nobody passed, and every test worth points everybody passed."""
    found: list[tuple[Tally, str]] = []
    for s in stats:
        if s.ran and s.passed == 0:
            found.append((s, f"nobody passed it ({s.ran} ran it): is the test or its reference broken?"))
        elif s.ran and s.failed == 0 and s.points:
            found.append((s, f"everybody passed it ({s.ran} ran it): does it check anything?"))
    return found


def not_graded_fully(graded: Graded) -> list[tuple[str, str, str]]:
    """(file, status keyword, why) for every row whose status is not ok."""
    return [(row["file"], *graded.status(row)) for row in graded.rows if graded.status(row)[0] != "ok"]


def manual_questions(stage: str, zips: Path | str | None = None) -> list[str]:
    """Questions of `stage` graded by hand, from the build's summary (empty if it is not there)."""
    summary = read_summary(stage, zips or ZIPS)
    return [q["name"] for q in summary.get("questions", []) if q.get("manual")]


# ---------------------------------------------------------------- HTML

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0; background: #f6f7f9; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 36px 0 6px; padding-top: 12px; border-top: 2px solid #dde1e6; }
h3 { font-size: 16px; margin: 22px 0 8px; }
.muted { color: #666; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; align-items: start; }
.plots figure { margin: 0; background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 8px; }
.plots img { display: block; width: 100%; height: auto; }
table { border-collapse: collapse; background: #fff; font-size: 14px; width: 100%; }
th, td { border: 1px solid #dde1e6; padding: 5px 9px; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; }
.tag { display: inline-block; white-space: nowrap; padding: 0 7px; border-radius: 9px; font-size: 12px; font-weight: 600; }
.tag.hidden { background: #e8eaf6; color: #303f9f; }
.tag.public { background: #e0f2f1; color: #00695c; }
.tag.ok { background: #e8f5e9; color: #2e7d32; }
.tag.bad { background: #ffebee; color: #c62828; }
ul.flags { padding-left: 0; list-style: none; }
ul.flags li { background: #fff8e1; border-left: 4px solid #f9a825; padding: 6px 10px; margin: 6px 0; }
.none { background: #fff; border: 1px dashed #cfd5dc; padding: 6px 10px; color: #555; }
details { margin-top: 14px; }
summary { cursor: pointer; font-weight: 600; }
details.pair { margin-top: 6px; background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 6px 10px; }
details.pair summary { font-weight: 400; }
.score { display: inline-block; min-width: 3.2em; font-weight: 600; font-variant-numeric: tabular-nums; }
.side { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 10px; margin-top: 8px; }
.side h4 { margin: 0 0 4px; font-size: 13px; }
.side pre { margin: 0; background: #fbfbfc; border: 1px solid #dde1e6; padding: 8px; overflow: auto;
            max-height: 640px; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
mark.rare { background: #ffb74d; }
mark.common { background: #fff3c4; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _table(headers: Iterable[str], rows: Iterable[Iterable[object]], numeric: tuple[int, ...] = ()) -> str:
    """An HTML table; cells are already-escaped HTML; columns in `numeric` align right."""
    head = "".join(f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>"
                   for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary(graded: Graded) -> tuple[int, float, float, int]:
    """(n, mean %, median %, not ok) for one stage."""
    percents = [csv_float(r["percent_correct"]) or 0.0 for r in graded.rows]
    mean = statistics.fmean(percents) if percents else 0.0
    median = statistics.median(percents) if percents else 0.0
    return len(graded.rows), mean, median, sum(graded.status(r)[0] != "ok" for r in graded.rows)


def _test_table(tallies: Iterable[Tally], last: str) -> str:
    """Failed tests with their counts: question, test, kind, failed n of N, hint or message."""
    rows = [(f"<code>{_e(s.question)}</code>", f"<code>{_e(s.name)}</code>",
             f'<span class="tag {"hidden" if s.hidden else "public"}">{"hidden" if s.hidden else "public"}</span>',
             f"{s.failed} of {s.ran} ({100 * s.failed / s.ran:.0f}%)", _e(s.hint))
            for s in tallies]
    return _table(["question", "test", "kind", "failed", last], rows, numeric=(3,))


def stage_section(graded: Graded) -> str:
    """The HTML section of one stage."""
    n, mean, median, bad = _summary(graded)
    stats = tally_tests(graded)
    parts = [f'<h2 id="{_e(graded.stage)}">{_e(graded.stage)}</h2>',
             f'<p class="muted">{n} submissions &middot; mean {mean:.0f}% &middot; median {median:.0f}%'
             f' &middot; {bad} not graded fully &middot; from <code>{_e(graded.folder)}</code></p>']
    manual = manual_questions(graded.stage)
    if manual:
        parts.append(f'<p class="muted">Graded by hand, not in these numbers: '
                     f'{", ".join(f"<code>{_e(q)}</code>" for q in manual)}.</p>')
    parts.append('<div class="plots">'
                 f'<figure><img src="{plot_totals(graded)}" alt="{_e(graded.stage)}: histogram of total scores"></figure>'
                 f'<figure><img src="{plot_pass_rates(graded)}" alt="{_e(graded.stage)}: pass rate per question"></figure>'
                 "</div>")

    parts.append("<h3>Tests failed most often</h3>")
    scored = [s for s in stats if s.points]
    failing = sorted((s for s in scored if s.failed), key=lambda s: (-s.failed, s.question, s.name))[:TOP_FAILED]
    if failing:
        parts.append(_test_table(failing, "hint (what the test checks)"))
    else:
        parts.append('<p class="none">No test worth points failed.</p>')
    public = sorted((s for s in stats if not s.points and s.failed), key=lambda s: (-s.failed, s.question, s.name))
    if public:
        parts.append(f"<details><summary>Public tests failed ({len(public)}, worth 0 points: "
                     f"the ones students run with grader.check)</summary>"
                     f"{_test_table(public, 'message (the first student to fail it)')}</details>")

    parts.append("<h3>Flags</h3>")
    found = flags(stats)
    if found:
        parts.append('<ul class="flags">' + "".join(
            f"<li><code>{_e(s.question)}</code> / <code>{_e(s.name)}</code>: {_e(msg)}</li>" for s, msg in found)
            + "</ul>")
    else:
        parts.append('<p class="none">No test was passed by everybody or by nobody.</p>')

    parts.append("<h3>Not graded fully (status not ok)</h3>")
    problems = not_graded_fully(graded)
    if problems:
        parts.append(_table(["file", "status", "why"],
                            [(_e(f), f'<span class="tag bad">{_e(s)}</span>', _e(d)) for f, s, d in problems]))
    else:
        parts.append('<p class="none">Every submission was graded fully.</p>')

    data = similarity.load(graded.folder)
    if data is not None:
        parts.append(similarity_section(data))

    columns = ["file"] + graded.questions + ["total", "status"]
    rows = [[_e(r["file"])] + [_e(r[q]) for q in graded.questions] + [_e(r["total"]),
            f'<span class="tag {"ok" if graded.status(r)[0] == "ok" else "bad"}">{_e(r["status"])}</span>']
            for r in graded.rows]
    numeric = tuple(range(1, len(graded.questions) + 2))
    parts.append(f"<details><summary>All {n} submissions</summary>"
                 f"{_table([_e(c) for c in columns], rows, numeric)}</details>")
    return "\n".join(parts)


def _marked(code: str, spans: object) -> str:
    """The code, escaped, with each [start, end, "rare" | "common"] span in a <mark> of that class."""
    out, at = [], 0
    for span in spans if isinstance(spans, list) else []:
        if not (isinstance(span, list) and len(span) == 3 and all(isinstance(v, int) for v in span[:2])):
            continue
        start, end = max(span[0], at), min(span[1], len(code))
        if start >= end:
            continue
        kind = "rare" if span[2] == "rare" else "common"
        out += [_e(code[at:start]), f'<mark class="{kind}">{_e(code[start:end])}</mark>']
        at = end
    return "".join(out + [_e(code[at:])])


def similarity_section(data: dict) -> str:
    """The pairs `sgdkit similarity` flagged, ranked; each opens into both answers side by side, shared code marked."""
    pairs, skipped, code = data.get("pairs") or [], data.get("skipped") or [], data.get("code") or {}
    parts = [f'<h3 id="{_e(data.get("stage", ""))}-similar">Similar submissions: '
             "flags for a person to look at, never a grade</h3>",
             f'<p class="muted">{_e(data.get("compared", 0))} submissions of {_e(data.get("stage", "?"))} compared '
             f'on the code students wrote (the starter notebook and <code>match/</code> removed). A score is the '
             f'share of the smaller answer that the other holds too, each passage weighed by how rare it is in the '
             f'class, and only passages of at least {_e(data.get("min_run"))} tokenised characters (about four '
             f'lines) counting; pairs scoring {_e(data.get("threshold"))} or more are listed, highest first. '
             f'<mark class="rare">Strong</mark> marks passages that few others wrote, '
             f'<mark class="common">pale</mark> the ones many share.</p>']
    if not pairs:
        parts.append('<p class="none">No pair of submissions is alike enough to flag.</p>')
    for rank, pair in enumerate(pairs, start=1):
        a, b = str(pair.get("file_a", "")), str(pair.get("file_b", ""))
        questions = ", ".join(f"<code>{_e(q)}</code>" for q in pair.get("questions") or []) or "none named"
        sides = "".join(f"<div><h4><code>{_e(name)}</code></h4><pre>{_marked(str(code.get(name, '')), spans)}</pre></div>"
                        for name, spans in ((a, pair.get("spans_a")), (b, pair.get("spans_b"))))
        # The top pair opens by itself: the one most worth a look.
        parts.append(f'<details class="pair"{" open" if rank == 1 else ""}><summary>#{rank} '
                     f'<span class="score">{_e(pair.get("score"))}</span> '
                     f"<code>{_e(a)}</code> &harr; <code>{_e(b)}</code> &middot; questions: {questions}</summary>"
                     f'<div class="side">{sides}</div></details>')
    if skipped:
        parts.append(f"<details><summary>Not compared ({len(skipped)})</summary>"
                     + _table(["file", "why"], [(_e(s.get("file", "")), _e(s.get("why", ""))) for s in skipped])
                     + "</details>")
    return "\n".join(parts)


def render(stages: Sequence[Graded], title: str = "sgdkit grading report") -> str:
    """The whole report for a list of Graded stages, as one HTML string."""
    overview = _table(
        ["stage", "submissions", "mean", "median", "not graded fully"],
        [(f'<a href="#{_e(g.stage)}">{_e(g.stage)}</a>', n, f"{mean:.0f}%", f"{median:.0f}%", bad)
         for g in stages for n, mean, median, bad in [_summary(g)]],
        numeric=(1, 2, 3, 4))
    sections = "\n".join(stage_section(g) for g in stages)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{_e(title)}</h1>\n"
            f'<p class="muted">Pass rate = share of submissions with full points on the question. '
            f"Hints are what a hidden test checks, as students see them in their feedback.</p>\n"
            f"{overview}\n{sections}\n</main>\n</body>\n</html>\n")


def write_report(graded_dirs: Iterable[Path | str], out_path: Path | str, title: str = "sgdkit grading report") -> Path:
    """Read the graded folders and write the report to out_path; returns out_path."""
    stages = [load_graded(d) for d in graded_dirs]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out_path, render(stages, title))
    return out_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("graded", nargs="+", metavar="DIR",
                        help="folders written by `sgdkit grade --out DIR`, one per stage")
    parser.add_argument("--out", default="report.html", help="the HTML file to write (default: report.html)")
    parser.add_argument("--title", default="sgdkit grading report")


def main(args: argparse.Namespace) -> int:
    try:
        path = write_report(args.graded, args.out, args.title)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    print(f"wrote {path}")
    return 0
