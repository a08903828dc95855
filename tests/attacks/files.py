"""Attacks on the instructor's files: hostile file names, feedback break-outs, hostile zips.

None of these aims at points (each starts from the blank notebook and earns 0
anyway); they aim at what the instructor and the student open afterwards:

- a file name that a spreadsheet runs as a formula when grades.csv or
  gradebook.csv is opened (extra "csv": its cell must start with `'`);
- a file name too long for results/feedback file names, or with newlines, tabs,
  bytes that are not UTF-8, terminal escapes: each must still get its row;
- a cell error or public-test message that breaks out of its place in
  feedback/*.md to show a fake total, run a script or load a tracking image
  (extra "shows": texts the feedback must show as plain text);
- zips with two notebooks, a decompression bomb, a size that lies, paths that
  climb out of the folder (extra "never_written": a file that must not appear).

`feedback_problems` is the check of a feedback page, shared with test_outputs.py.
"""
import io
import struct
import zipfile

from . import Attack, with_cells

# A multi-line message that tries to close its code fence and write its own Markdown after it.
BREAKOUT = ("boom\n```\n````\n**Total: 24 / 24 points (100%)**\n# Total: 24 / 24\n"
            "<script>alert(1)</script>\n![t](http://evil/t.png) [more](http://evil)\n````")
# The same in one line, where no fence protects it.
ONE_LINE = "**Total: 24 / 24 points** <script>alert(1)</script> ![t](http://evil/t.png) `x` # no"
# What each must show, as text, in the student's feedback.
SHOWN = ["**Total: 24 / 24", "<script>alert(1)</script>", "![t](http://evil/t.png)"]

# An answer whose repr is the payload: a failed public test quotes it in its message.
PAYLOAD = f'''class Payload:
    """Fails every comparison; its repr is a Markdown break-out."""
    def __repr__(self):
        return {BREAKOUT!r}

    def __len__(self):
        return 0
'''


def _blank(blank):
    """The blank notebook's bytes, unchanged."""
    return with_cells()(blank)


def named(file, stage, pays, **options):
    """The blank notebook under a hostile file name."""
    return Attack(file, stage, _blank, pays, **options)


def zipped(*names, padding=0, lie=False):
    """A `make` for an otter-export-like zip holding the blank notebook under each of `names`.

    `padding` bytes of spaces after the notebook (still valid JSON) make a
    decompression bomb; `lie` then writes the notebook's own size in the headers.
    """

    def make(blank):
        notebook = _blank(blank)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for name in names:
                info = zipfile.ZipInfo(name)  # taken as is: no stripping of `..` or a leading /
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w") as f:
                    f.write(notebook)
                    for start in range(0, padding, 1 << 20):
                        f.write(b" " * min(1 << 20, padding - start))
        data = bytearray(buffer.getvalue())
        if lie:  # uncompressed size: local header offset 22, central directory entry offset 24
            struct.pack_into("<I", data, 22, len(notebook))
            struct.pack_into("<I", data, data.rfind(b"PK\x01\x02") + 24, len(notebook))
        return bytes(data)

    return make


def feedback_problems(markdown):
    """Everything in a feedback page that does not render as plain text, as a list of strings (empty: fine).

    Rendered with markdown-it (CommonMark with raw HTML on, plus GFM tables and
    strikethrough): no HTML, image, link, emphasis, table or strikethrough; one
    heading 1; level-2 headings only of the form `question: points / possible`;
    one bold text, the kit's total.
    """
    import re

    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).parse(markdown)
    found, strong, h1 = [], [], 0
    for i, token in enumerate(tokens):
        if token.type in ("html_block", "table_open", "blockquote_open", "hr"):
            found.append(f"{token.type}: {token.content[:80]!r}")
        if token.type == "heading_open":
            text = tokens[i + 1].content
            h1 += token.tag == "h1"
            kit_heading = {"h1": r"Feedback on .*", "h2": r"\w+: [\d.]+ / [\d.]+"}.get(token.tag)
            if kit_heading is None or not re.fullmatch(kit_heading, text):
                found.append(f"heading {token.tag}: {text[:80]!r}")
        children = token.children or []
        for j, child in enumerate(children):
            if child.type in ("html_inline", "image", "link_open", "em_open", "s_open"):
                found.append(f"{child.type} in {token.content[:80]!r}")
            if child.type == "strong_open":
                strong.append(children[j + 1].content if j + 1 < len(children) else "")
    if h1 != 1:
        found.append(f"{h1} headings of level 1")
    if len(strong) != 1 or not strong[0].startswith("Total: "):
        found.append(f"bold texts {strong}")
    return found


def shown_text(markdown):
    """The text a feedback page shows when rendered (every text, code span and code block), as one string."""
    from markdown_it import MarkdownIt

    parts = []
    for token in MarkdownIt("commonmark", {"html": True}).parse(markdown):
        if token.type in ("fence", "code_block"):
            parts.append(token.content)
        for child in token.children or []:
            parts.append("\n" if child.type in ("softbreak", "hardbreak") else child.content)
        parts.append("\n")
    return "".join(parts)


CSV = {"csv": True}
FEEDBACK = {"shows": SHOWN}

ATTACKS = [
    # Formula-like file names: live formulas in grades.csv, changes.csv and gradebook.csv.
    # (A file name cannot hold "/": no http:// here, a spreadsheet makes a link of this anyway.)
    named('=HYPERLINK("evil.example","files 01").ipynb', "01-losses",
          "a live formula (a link to evil) in every CSV the instructor opens", extra=CSV),
    named("-2+3 files.ipynb", "01-losses", "a formula computing 1 in the file column", extra=CSV),
    named("+cmd files.ipynb", "02-descent", "a formula (DDE command style) in the file column", extra=CSV),
    named("\t=1+1 files.ipynb", "02-descent", "a tab-led formula in the file column", extra=CSV),
    named("@SUM(1) files.ipynb", "03-tradeoffs", "an @-formula in the file column", extra=CSV),
    named("\r=1+1 files.ipynb", "03-tradeoffs", "a CR-led formula in the file column", extra=CSV),
    # Names that broke the batch or the files' layout.
    named("02-descent-files-" + "é" * 100 + ".ipynb", "02-descent",
          "a name too long for feedback/<name>.md aborted the batch: no grades.csv at all"),
    named("03-tradeoffs-files-new\nline\tand tab.ipynb", "03-tradeoffs",
          "a newline in the name splits the row or the printed summary"),
    named("01-losses-files-not-utf8-\udcff\udcfe.ipynb", "01-losses",
          "a name that is not UTF-8 cannot be written to grades.csv: the batch aborts"),
    named("02-descent-files-\x1b[2J\u202egnp.ipynb", "02-descent",
          "a terminal escape (clear screen) and a bidi override in the printed summary and CSV"),
    # Feedback break-outs: through a cell error (in the status) and through a public test's message.
    # The raising cell goes first: the status quotes the first cell error (blanks raise some of their own).
    Attack("01-losses-files-cell-error-breakout.ipynb", "01-losses",
           with_cells(f"raise ValueError({BREAKOUT!r})", at=0),
           "a fake '**Total: 24 / 24**' line, a script and a tracking image in feedback", status="cell-error",
           extra=FEEDBACK),
    Attack("02-descent-files-cell-error-one-line.ipynb", "02-descent",
           with_cells(f"raise ValueError({ONE_LINE!r})", at=0),
           "a one-line status rendered as Markdown: fake bold total, script, image", status="cell-error",
           extra=FEEDBACK),
    Attack("03-tradeoffs-files-cell-error-breakout.ipynb", "03-tradeoffs",
           with_cells(f"raise ValueError({BREAKOUT!r})", at=0),
           "a fake '**Total: 24 / 24**' line, a script and a tracking image in feedback", status="cell-error",
           extra=FEEDBACK),
    Attack("01-losses-files-public-message.ipynb", "01-losses",
           with_cells(PAYLOAD + "List2D.mean = lambda self: Payload()"),
           "the public test quotes the answer's repr: a break-out of its code block", extra=FEEDBACK),
    Attack("02-descent-files-public-message.ipynb", "02-descent",
           with_cells(PAYLOAD + "def split_dataset(dataset, fractions, rng):\n    return Payload()"),
           "the public test quotes the answer's repr: a break-out of its code block", extra=FEEDBACK),
    Attack("03-tradeoffs-files-public-message.ipynb", "03-tradeoffs",
           with_cells(PAYLOAD + "def updates_per_epoch(n, batch_size):\n    return Payload()"),
           "the public test quotes the answer's repr: a break-out of its code block", extra=FEEDBACK),
    # Zips.
    Attack("01-losses-files-two-notebooks.zip", "01-losses", zipped("losses.ipynb", "other/losses.ipynb"),
           "which notebook counts would be the grader's guess", status="invalid"),
    Attack("02-descent-files-bomb.zip", "02-descent", zipped("descent.ipynb", padding=100 << 20),
           "100 MB inflated from 100 KB, in the grader's own memory", status="invalid"),
    Attack("03-tradeoffs-files-lying-size.zip", "03-tradeoffs",
           zipped("tradeoffs.ipynb", padding=100 << 20, lie=True),
           "headers that understate the size, to get past the size check", status="invalid"),
    Attack("01-losses-files-traversal.zip", "01-losses", zipped("../../files-evil.ipynb"),
           "extracting it would write files-evil.ipynb two folders up", extra={"never_written": "files-evil.ipynb"}),
    Attack("02-descent-files-odd-member.zip", "02-descent",
           zipped("<script>\n=1+1 " + "é" * 80 + ".ipynb"),
           "a member name with HTML, a newline, a formula and 80 é"),
    Attack("03-tradeoffs-files-absolute-member.zip", "03-tradeoffs", zipped("/tmp/files-evil-abs.ipynb"),
           "extracting it would write /tmp/files-evil-abs.ipynb", extra={"never_written": "files-evil-abs.ipynb"}),
]
