"""What the kit writes for people: CSV files, results/feedback file names, feedback Markdown, progress.

Every text that came from a submission (its file name, cell errors, public-test
messages) is hostile here:

- CSV (grades.csv, changes.csv, gradebook.csv): a cell a spreadsheet would run
  as a formula gets a leading `'` (OWASP "CSV injection"); `read_cell` undoes it
  exactly, so the kit's own readers see the original text.
- names: `visible` shows control, line-breaking and bidi characters (and bytes
  that are not UTF-8) as backslash escapes; `flat_name` gives a results/feedback
  file name that is valid on any file system, however long the original.
- Markdown: a one-line text is backslash-escaped where Markdown or HTML would
  give it a meaning; a longer text goes into a fenced block it cannot close.
  Either way it renders as the plain text it is.
"""
import csv
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import time
import unicodedata
from urllib.parse import quote

# ---------------------------------------------------------------- CSV

# A spreadsheet runs a cell starting with one of these as a formula (OWASP); LF for good measure.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
# A plain number ("-1.5") is a number to a spreadsheet, not a formula: left as it is.
PLAIN_NUMBER = re.compile(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?")


def safe_cell(value):
    """A CSV cell no spreadsheet runs as a formula: text starting with = + - @ tab CR LF (or ') gets a leading '."""
    if isinstance(value, (int, float)):
        return value
    text = "" if value is None else str(value)
    if PLAIN_NUMBER.fullmatch(text):
        return text
    # A leading ' is doubled too, so that read_cell gives back exactly this text.
    return "'" + text if text.startswith(FORMULA_START + ("'",)) else text


def read_cell(text):
    """The text `safe_cell` was given: one leading ' removed."""
    return text[1:] if isinstance(text, str) and text.startswith("'") else text


def write_csv(path, header, rows):
    """Write a CSV atomically, every cell (the header too) through safe_cell."""
    buffer = io.StringIO()
    # CRLF rows (RFC 4180): the csv module then quotes a cell holding a lone CR, which would otherwise end the row.
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in [header, *rows]:
        writer.writerow([safe_cell(cell) for cell in row])
    write_atomic(path, buffer.getvalue())


def read_csv(path, encoding="utf-8"):
    """(columns, rows as dicts) of a CSV the kit wrote (or one saved from it), every cell through read_cell."""
    with open(path, newline="", encoding=encoding) as f:
        lines = [[read_cell(cell) for cell in row] for row in csv.reader(f) if row]
    columns = lines[0] if lines else []
    # As csv.DictReader: a short row's missing cells are None.
    return columns, [{c: row[i] if i < len(row) else None for i, c in enumerate(columns)} for row in lines[1:]]


# ---------------------------------------------------------------- names

# Characters that reorder text on screen (Trojan Source); shown as escapes like control characters.
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Some file systems take 255 bytes per name, eCryptfs 143: leave room for ".json" and more.
MAX_FLAT = 120


def visible(text):
    """`text` on one line, with control, line-breaking and bidi characters and undecodable bytes as escapes."""
    return "".join(_escape(c) if _hidden(c) else c for c in text)


def _hidden(char):
    """Would this character be invisible, break the line or reorder the text?"""
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI


def _escape(char):
    """A backslash escape for one hidden character; an undecodable byte of a file name shows as that byte."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(char) or (
        f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def flat_name(file):
    """The results/feedback file name (no extension) for a grades.csv name: ASCII, at most MAX_FLAT characters.

    An ordinary name stays readable (`alice/losses.ipynb` -> `alice%2Flosses.ipynb`);
    a longer one is cut and ends with a hash of the whole name, so it stays unique.
    """
    raw = file.encode("utf-8", "surrogatepass")  # never fails, whatever the name holds
    flat = quote(raw, safe=" ()[]{}-_.,'+@=~#&!")
    if len(flat) <= MAX_FLAT:
        return flat
    head = flat[:MAX_FLAT - 17]
    cut = head.find("%", len(head) - 2)
    head = head[:cut] if cut >= 0 else head  # never split a %XX escape
    return f"{head}~{hashlib.sha256(raw).hexdigest()[:16]}"


# ---------------------------------------------------------------- files


def write_atomic(path, text):
    """Write via a temp file and rename, so a crash never leaves half a file.

    Text that cannot be UTF-8 (a lone surrogate from a kernel's message) is
    written as a backslash escape instead of failing; in JSON that is the same string.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_result(out, file):
    """The stored results/<name>.json of a grades.csv name, or None if there is none (or it is unreadable)."""
    try:
        return json.loads((out / "results" / (flat_name(file) + ".json")).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def save_result(out, result, spec):
    """Write feedback/<name>.md, then results/<name>.json; on failure say so in the status, never raise.

    The JSON goes last: a rerun skips a submission only when its JSON is stored.
    """
    name = flat_name(result["file"])
    try:
        write_atomic(out / "feedback" / f"{name}.md", feedback(result, spec))
        write_atomic(out / "results" / f"{name}.json", json.dumps(result, indent=1, ensure_ascii=False))
    except Exception as exc:  # a full disk or an odd file system costs this submission its files, not the batch
        problem = (f"crashed: graded, but its feedback or results could not be written "
                   f"({type(exc).__name__}: {exc}); rerun to write them")[:500]
        print(f"sgdkit grade: {visible(result['file'])}: {problem}", file=sys.stderr)
        result["notes"] = [*result.get("notes", []), f"status before writing failed: {result['status']}"]
        result["status"] = problem
        result.pop("grader", None)


def number(x):
    """A score as grades.csv shows it: 3, 2.5, 66.67."""
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:.4g}"


def write_grades(path, spec, results):
    """grades.csv: file, one column per autograded question (notebook order), total, percent_correct, status."""
    rows = [[r["file"], *[number(r["questions"].get(q, {}).get("points", 0)) for q in spec.questions],
             number(r["total"]), number(r["percent_correct"]), r["status"]] for r in results]
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


def md_text(text):
    """One line of plain text for Markdown: escaped wherever Markdown or HTML would read it as markup."""
    text = visible(text.strip())
    text = MD_INLINE.sub(r"\\\g<0>", text)
    text = MD_UNDERSCORE.sub(r"\\_", text)
    text = MD_AUTOLINK.sub(lambda m: "\\" + m.group(0), text)
    return MD_LINE_START.sub(r"\1\\\2", text)


def md_block(text, indent=""):
    """Lines of a fenced code block showing `text` verbatim: the fence is longer than any backtick run in it."""
    lines = [visible(line.expandtabs(4)) for line in text.splitlines()]
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    # Every line is indented like the fence: a shallower line would end the list item, and the block with it.
    return [indent + fence, *[indent + line if line else line for line in lines], indent + fence]


def md_quote(lead, text, indent=""):
    """Lines: `lead` and then `text` as plain text, on the same line if it is one line, else as a block below."""
    text = (text or "").strip()
    if len(text.splitlines()) <= 1:
        return [f"{lead} {md_text(text)}".rstrip()]
    return [lead, "", *md_block(text, indent)]


def feedback(result, spec):
    """The student's feedback: points per question, public test messages, hints for hidden checks."""
    status = result["status"]
    lines = [f"# Feedback on {md_text(result['file'])} ({spec.name})", "",
             f"**Total: {number(result['total'])} / {number(result['possible'])} points "
             f"({number(result['percent_correct'])}%)**", ""]
    if status != "ok":
        lines += [*md_quote("Grading note:", status), ""]
    if status.startswith(("invalid:", "wrong-stage:", "tampered:")):
        # Nothing was checked (or nothing counts): hints would only mislead.
        lines += ["No question could be graded, so every question scores 0. "
                  "Fix the problem above and ask your instructor how to resubmit.", ""]
        return "\n".join(lines)
    for q in spec.questions:
        outcome = result["questions"].get(q)
        if outcome is None:
            continue
        lines += [f"## {q}: {number(outcome['points'])} / {number(outcome['possible'])}", ""]
        failing = [t for t in outcome["tests"] if not t["passed"]]
        for test in failing:
            if test["hidden"]:  # the kit's own hint, escaped all the same: `(yhat - y)**2` is not bold
                lines.append(f"- Hidden check `{test['name']}` ({number(test['points'])} pt) failed: "
                             f"{md_text(test.get('hint') or '')}".rstrip())
            else:
                lines += md_quote(f"- Public test `{test['name']}`:", test.get("message"), indent="  ")
        lines += [] if failing else ["All checks passed."]
        lines.append("")
    if spec.manual:
        lines += [f"Questions graded by hand, not included above: {', '.join(spec.manual)}.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the terminal


def summary_line(results, out):
    """One line for the end of a batch: how many submissions, by status keyword, and where grades.csv is."""
    kinds = {}
    for r in results:
        kind = r["status"].split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: (kv[0] != "ok", kv[0])))
    return f"Graded {len(results)} submission(s): {counts or 'none'}. Grades: {out / 'grades.csv'}"


class Progress:
    """A plain text progress bar on a terminal; silent otherwise."""

    def __init__(self, total, done, enabled=None):
        self.total, self.done, self.start = total, done, time.monotonic()
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.problems = 0
        self._draw()

    def advance(self, result):
        self.done += 1
        self.problems += result["status"] != "ok"
        self._draw()

    def _draw(self):
        if not self.enabled or not self.total:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.start
        sys.stderr.write(f"\rgrading [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                         f"  {self.problems} not ok  {elapsed:.0f} s ")
        sys.stderr.flush()

    def close(self):
        if self.enabled and self.total:
            sys.stderr.write("\n")
