"""Write what grading leaves for people: feedback Markdown, results JSON, grades.csv and the closing line.

Everything a submission wrote (its file name, cell errors, public-test
messages) renders as the plain text it is: a one-line text is backslash-escaped
where Markdown or HTML would give it a meaning; a longer text goes into a
fenced block it cannot close.
"""
import json
import logging
import re
from pathlib import Path

from .outputs import flat_name, visible, write_atomic, write_csv
from .results import Result, status_text
from .stage import Stage

log = logging.getLogger(__name__)


def save_result(out: Path, result: Result, spec: Stage) -> None:
    """Write feedback/<name>.md, then results/<name>.json; on failure say so in the status, never raise.

    The JSON goes last: a rerun skips a submission only when its JSON is stored.
    """
    name = flat_name(result["file"])
    try:
        write_atomic(out / "feedback" / f"{name}.md", feedback(result, spec))
        write_atomic(out / "results" / f"{name}.json", json.dumps(result, indent=1, ensure_ascii=False))
    except Exception as exc:  # a full disk or an odd file system costs this submission its files, not the batch
        problem = (f"graded, but its feedback or results could not be written "
                   f"({type(exc).__name__}: {exc}); rerun to write them")[:500]
        log.error("%s: crashed: %s", visible(result["file"]), problem)
        result["notes"] = [*result.get("notes", []), f"status before writing failed: {status_text(result)}"]
        result["status"], result["detail"] = "crashed", problem
        result.pop("grader", None)


def score_text(x: float) -> str:
    """A score as grades.csv shows it: 3, 2.5, 66.67."""
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:.4g}"


def write_grades(path: Path, spec: Stage, results: list[Result]) -> None:
    """grades.csv: file, one column per autograded question (notebook order), total, percent_correct, status."""
    def points(r: Result, q: str) -> str:
        return score_text(r["questions"][q]["points"] if q in r["questions"] else 0)

    rows = [[r["file"], *[points(r, q) for q in spec.questions], score_text(r["total"]),
             score_text(r["percent_correct"]), status_text(r)] for r in results]
    write_csv(path, ["file", *spec.questions, "total", "percent_correct", "status"], rows)


# ---------------------------------------------------------------- Markdown

# Characters that mean something anywhere in a line: escapes, code, emphasis, links and images,
# HTML and entities, strikethrough, tables, math.
MD_INLINE = re.compile(r"[\\`*\[\]<&~|$]")
# `_` emphasises only at a word's edge (CommonMark): list2d_mean stays as it is.
MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# What a line may start with to become a heading, quote, list item, table or setext underline.
MD_LINE_START = re.compile(r"^(\d{1,9}(?=[.)])|)([#>+\-=|.)])")
# Bare URLs and e-mail addresses that GFM renderers turn into links.
MD_AUTOLINK = re.compile(r"(?<=[a-zA-Z])(:)(?=//)|(?<=www)(\.)|(@)")


def md_text(text: str) -> str:
    """One line of plain text for Markdown: escaped wherever Markdown or HTML would read it as markup."""
    text = visible(text.strip())
    text = MD_INLINE.sub(r"\\\g<0>", text)
    text = MD_UNDERSCORE.sub(r"\\_", text)
    text = MD_AUTOLINK.sub(lambda m: "\\" + m.group(0), text)
    return MD_LINE_START.sub(r"\1\\\2", text)


def md_block(text: str, indent: str = "") -> list[str]:
    """Lines of a fenced code block showing `text` verbatim: the fence is longer than any backtick run in it."""
    lines = [visible(line.expandtabs(4)) for line in text.splitlines()]
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    # Every line is indented like the fence: a shallower line would end the list item, and the block with it.
    return [indent + fence, *[indent + line if line else line for line in lines], indent + fence]


def md_quote(lead: str, text: str | None, indent: str = "") -> list[str]:
    """Lines: `lead` and then `text` as plain text, on the same line if it is one line, else as a block below."""
    text = (text or "").strip()
    if len(text.splitlines()) <= 1:
        return [f"{lead} {md_text(text)}".rstrip()]
    return [lead, "", *md_block(text, indent)]


def feedback(result: Result, spec: Stage) -> str:
    """The student's feedback: points per question, public test messages, hints for hidden checks."""
    lines = [f"# Feedback on {md_text(result['file'])} ({spec.name})", "",
             f"**Total: {score_text(result['total'])} / {score_text(result['possible'])} points "
             f"({score_text(result['percent_correct'])}%)**", ""]
    if result["status"] != "ok":
        lines += [*md_quote("Grading note:", status_text(result)), ""]
    if result["status"] in ("invalid", "wrong-stage", "tampered"):
        # Nothing was checked (or nothing counts): hints would only mislead.
        lines += ["No question could be graded, so every question scores 0. "
                  "Fix the problem above and ask your instructor how to resubmit.", ""]
        return "\n".join(lines)
    for q in spec.questions:
        outcome = result["questions"].get(q)
        if outcome is None:
            continue
        lines += [f"## {q}: {score_text(outcome['points'])} / {score_text(outcome['possible'])}", ""]
        failing = [t for t in outcome["tests"] if not t["passed"]]
        for test in failing:
            if test["hidden"]:  # the kit's own hint, escaped all the same: `(yhat - y)**2` is not bold
                lines.append(f"- Hidden check `{test['name']}` ({score_text(test['points'])} pt) failed: "
                             f"{md_text(test.get('hint') or '')}".rstrip())
            else:
                lines += md_quote(f"- Public test `{test['name']}`:", test.get("message"), indent="  ")
        lines += [] if failing else ["All checks passed."]
        lines.append("")
    if spec.manual:
        lines += [f"Questions graded by hand, not included above: {', '.join(spec.manual)}.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the terminal


def summary_line(results: list[Result], out: Path) -> str:
    """One line for the end of a batch: how many submissions, by status keyword, and where grades.csv is."""
    kinds: dict[str, int] = {}
    for r in results:
        kinds[r["status"]] = kinds.get(r["status"], 0) + 1
    counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: (kv[0] != "ok", kv[0])))
    return f"Graded {len(results)} submission(s): {counts or 'none'}. Grades: {out / 'grades.csv'}"
