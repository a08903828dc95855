"""Write files safely from hostile text: CSV cells no spreadsheet runs, visible and flat file names, atomic writes.

Every text that came from a submission (its file name, cell errors, public-test
messages) is hostile here:

- CSV (grades.csv, changes.csv, gradebook.csv): a cell a spreadsheet would run
  as a formula gets a leading `'` (OWASP "CSV injection"); `read_cell` undoes it
  exactly, so the kit's own readers see the original text.
- names: `visible` shows control, line-breaking and bidi characters (and bytes
  that are not UTF-8) as backslash escapes; `flat_name` gives a results/feedback
  file name that is valid on any file system, however long the original.

feedback.py escapes Markdown the same way.
"""
import csv
import hashlib
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

# ---------------------------------------------------------------- CSV

# A spreadsheet runs a cell starting with one of these as a formula (OWASP); LF for good measure.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
# A plain number ("-1.5") is a number to a spreadsheet, not a formula: left as it is.
PLAIN_NUMBER = re.compile(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?")
# A cell as read_cell gets it: text from a CSV, or a number safe_cell left as it is.
Cell = TypeVar("Cell", str, int, float)


def safe_cell(value: object) -> str | int | float:
    """A CSV cell no spreadsheet runs as a formula: text starting with = + - @ tab CR LF (or ') gets a leading '."""
    if isinstance(value, (int, float)):
        return value
    text = "" if value is None else str(value)
    if PLAIN_NUMBER.fullmatch(text):
        return text
    # A leading ' is doubled too, so that read_cell gives back exactly this text.
    return "'" + text if text.startswith(FORMULA_START + ("'",)) else text


def read_cell(text: Cell) -> Cell:
    """The text `safe_cell` was given: one leading ' removed."""
    return text[1:] if isinstance(text, str) and text.startswith("'") else text


def write_csv(path: Path, header: Iterable[object], rows: Iterable[Iterable[object]]) -> None:
    """Write a CSV atomically, every cell (the header too) through safe_cell."""
    buffer = io.StringIO()
    # CRLF rows (RFC 4180): the csv module then quotes a cell holding a lone CR, which would otherwise end the row.
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in [header, *rows]:
        writer.writerow([safe_cell(cell) for cell in row])
    write_atomic(path, buffer.getvalue())


def read_csv(path: Path | str, encoding: str = "utf-8") -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows as dicts) of a CSV the kit wrote (or one saved from it), every cell through read_cell."""
    with open(path, newline="", encoding=encoding) as f:
        lines = [[read_cell(cell) for cell in row] for row in csv.reader(f) if row]
    columns = lines[0] if lines else []
    # As csv.DictReader: a short row's missing cells are None (hence Any: Graded.rows says str,
    # as every row the kit writes is full).
    return columns, [{c: row[i] if i < len(row) else None for i, c in enumerate(columns)} for row in lines[1:]]


# ---------------------------------------------------------------- names

# Characters that reorder text on screen (Trojan Source); shown as escapes like control characters.
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Some file systems take 255 bytes per name, eCryptfs 143: leave room for ".json" and more.
MAX_FLAT = 120


def visible(text: str) -> str:
    """`text` on one line, with control, line-breaking and bidi characters and undecodable bytes as escapes."""
    return "".join(_escape(c) if _hidden(c) else c for c in text)


def _hidden(char: str) -> bool:
    """Would this character be invisible, break the line or reorder the text?"""
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI


def _escape(char: str) -> str:
    """A backslash escape for one hidden character; an undecodable byte of a file name shows as that byte."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(char) or (
        f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def flat_name(file: str) -> str:
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


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temp file and rename, so a crash never leaves half a file, nor the temp file.

    The file is its owner's alone (mode 0600): what the kit writes this way holds students' grades.

    Text that cannot be UTF-8 (a lone surrogate from a kernel's message) is
    written as a backslash escape instead of failing; in JSON that is the same string.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        if isinstance(data, str):
            data = data.encode("utf-8", errors="backslashreplace")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
