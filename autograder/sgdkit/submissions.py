"""Find, read and validate submitted notebooks; never run them.

A submission is refused (`Rejected`, with its status keyword) when it cannot
be read, is not a notebook, or belongs to another stage; it still gets its row.
"""
import ast
import hashlib
import json
import logging
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable

import nbformat

from .outputs import visible
from .results import Status
from .stage import Stage, parse_python

log = logging.getLogger(__name__)
MAX_NOTEBOOK_BYTES = 64 << 20
MAX_ZIP_BYTES = 256 << 20


@dataclass
class Submission:
    path: Path
    file: str  # the name in grades.csv: the file name, with parent folders only where names collide


def find_submissions(paths: Iterable[Path | str]) -> list["Submission"]:
    """Every notebook (or otter export zip) at `paths`, named uniquely for grades.csv.

    A PATH that does not exist is an error. Anything named *.ipynb or *.zip in a
    folder gets a row, even when it cannot be read (a broken link, a pipe): the
    row then says why. Folders that cannot be listed are skipped.
    """
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += _notebooks_in(path)
        elif os.path.lexists(path):  # a broken link given by name still gets its row
            found.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist")
    unique: dict[str, Path] = {}
    for path in found:  # the same file reached twice (through a link) is graded once
        unique.setdefault(os.path.realpath(path), Path(os.path.abspath(path)))
    return _name_uniquely(list(unique.values()))


def _notebooks_in(folder: Path) -> list[Path]:
    """Paths named *.ipynb or *.zip under `folder`, not hidden, not in .ipynb_checkpoints."""
    found, walked = [], set()

    def unlisted(error: OSError) -> None:  # its files cannot get rows: the instructor must hear of it
        log.warning("could not list %s (%s); nothing in it is graded",
                    visible(str(error.filename)), error.strerror or error)

    # `walked` stops a link back up the tree from looping.
    for parent, dirs, names in os.walk(folder, onerror=unlisted, followlinks=True):
        real = os.path.realpath(parent)
        if real in walked:
            dirs[:] = []
            continue
        walked.add(real)
        dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
        found += [Path(parent, name) for name in sorted(names)
                  if name.endswith((".ipynb", ".zip")) and not name.startswith(".")]
    return found


def _name_uniquely(paths: list[Path]) -> list["Submission"]:
    """Submissions named by their file name (shown with `visible`), with parent folders only where names collide."""
    by_name: dict[str, list[Path]] = {}
    for path in paths:
        by_name.setdefault(visible(path.name), []).append(path)
    subs = []
    for name, group in by_name.items():
        if len(group) == 1:
            subs.append(Submission(group[0], name))
            continue
        # Same file name in several folders: keep as many parent folders as it takes.
        depth, deepest = 1, max(len(p.parts) for p in group)
        while depth < deepest and len({_tail(p, depth) for p in group}) < len(group):
            depth += 1
        if len({_tail(p, depth) for p in group}) < len(group):
            depth = 0  # one folder, names that differ only in bytes that are not UTF-8: numbered below
        subs += [Submission(p, _tail(p, depth)) for p in group]
    # Names that still collide differ only in bytes that are not UTF-8 (shown as \xNN): number them.
    taken = set()
    for sub in sorted(subs, key=lambda s: (s.file, str(s.path))):
        name, n = sub.file, 1
        while name in taken:
            n += 1
            name = f"{sub.file} ({n})"
        taken.add(name)
        sub.file = name
    return sorted(subs, key=lambda s: s.file)


def _tail(path: Path, depth: int) -> str:
    """The file name with `depth` parent folders, as grades.csv shows it."""
    return visible("/".join(path.parts[-depth - 1:]))


class Rejected(Exception):
    """A submission that cannot be run: `kind` is its status keyword."""

    def __init__(self, kind: Status, message: str):
        super().__init__(message)
        self.kind = kind


def read_notebook(path: Path) -> bytes:
    """The notebook's bytes: the file itself, or the single .ipynb inside an otter export zip."""
    try:
        with open_regular(path) as f:
            return _read_zip(f) if path.suffix == ".zip" else _read_file(f)
    except OSError as exc:
        raise Rejected("invalid", f"could not read the file ({exc.strerror or exc})") from None


def open_regular(path: Path) -> IO[bytes]:
    """`path` opened for reading in binary, if it is a regular file (links followed); never blocks on a pipe."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Rejected("invalid", "not a regular file (a folder, pipe or device)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_file(f: IO[bytes]) -> bytes:
    """A notebook file's bytes, refused past MAX_NOTEBOOK_BYTES."""
    size = os.fstat(f.fileno()).st_size
    data = f.read(MAX_NOTEBOOK_BYTES + 1)  # the size may change under us: the cap holds on what is read
    if max(size, len(data)) > MAX_NOTEBOOK_BYTES:
        raise Rejected("invalid", f"file is {max(size, len(data)) >> 20} MB, more than {MAX_NOTEBOOK_BYTES >> 20} MB")
    return data


def _read_zip(f: IO[bytes]) -> bytes:
    """The single notebook's bytes out of an otter export zip; never .OTTER_LOG nor anything else in it."""
    size = os.fstat(f.fileno()).st_size
    if size > MAX_ZIP_BYTES:
        raise Rejected("invalid", f"zip is {size >> 20} MB, more than {MAX_ZIP_BYTES >> 20} MB")
    try:
        with zipfile.ZipFile(f) as zf:
            # Only the notebook: never .OTTER_LOG (a pickle) nor any folder the student shipped.
            notebooks = [i for i in zf.infolist() if i.filename.endswith(".ipynb")
                         and not i.is_dir() and "__MACOSX" not in i.filename
                         and ".ipynb_checkpoints" not in i.filename]
            if len(notebooks) != 1:
                raise Rejected("invalid", f"zip holds {len(notebooks)} notebooks, expected exactly 1")
            if notebooks[0].file_size > MAX_NOTEBOOK_BYTES:
                raise Rejected("invalid", f"notebook in zip is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
            with zf.open(notebooks[0]) as member:
                data = member.read(MAX_NOTEBOOK_BYTES + 1)  # the header's size may lie: the cap holds anyway
    except Rejected:
        raise
    except Exception as exc:  # a crafted zip makes zipfile raise many kinds (BadZipFile, zlib.error, ValueError...)
        raise Rejected("invalid", f"not a readable zip ({type(exc).__name__}: {exc})"[:300]) from None
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise Rejected("invalid", f"notebook in zip is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
    return data


def parse_notebook(data: bytes) -> tuple[nbformat.NotebookNode, list[str]]:
    """(notebook, notes): parsed and upgraded to nbformat 4; Rejected if it is not a notebook."""
    if not data.strip():
        raise Rejected("invalid", "empty file")
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise Rejected("invalid", "not a notebook (not text)") from None
    except json.JSONDecodeError as exc:
        raise Rejected("invalid", f"not a notebook (broken JSON: {exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        raise Rejected("invalid", "not a notebook (JSON without cells)")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as exc:
        raise Rejected("invalid", f"not a notebook ({type(exc).__name__}: {str(exc)[:200]})") from None
    notes = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        # Editors other than Jupyter write small schema slips; grade those if the cells are usable.
        if not all(isinstance(c, dict) and isinstance(c.get("source"), str) and "cell_type" in c for c in nb.cells):
            raise Rejected("invalid", f"not a valid notebook ({exc.message[:200]})") from None
        notes.append(f"notebook does not fully match the nbformat schema: {exc.message[:200]}")
    return nb, notes


INIT_CELL = re.compile(r"""otter\s*\.\s*Notebook\s*\(\s*(?:nb_path\s*=\s*)?["']([^"']+)["']""")


def check_stage(nb: nbformat.NotebookNode, spec: Stage) -> None:
    """Rejected('wrong-stage') if the notebook says it belongs to another stage."""
    meta_stage = (nb.metadata.get("sgdkit") or {}).get("stage")
    if meta_stage and meta_stage != spec.name:
        raise Rejected("wrong-stage", f"this is a {meta_stage} notebook, not {spec.name}")
    for cell in nb.cells:
        match = INIT_CELL.search(cell.source) if cell.cell_type == "code" else None
        if match:
            name = os.path.basename(match.group(1))
            if name != spec.notebook and name in spec.others:
                raise Rejected("wrong-stage", f"this is a {spec.others[name]} notebook ({name}), not {spec.name}")
            return


def code_cells(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """[(number among the code cells, from 1; source)] to execute: otter's ignored cells and the export cell left out.

    Numbered among code cells only, as a student counts them: markdown cells in between do not count.
    """
    cells = []
    for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        if not cell.source.strip():
            continue
        meta = cell.get("metadata", {})
        if "otter_ignore" in meta.get("tags", []) or (meta.get("otter") or {}).get("ignore"):
            continue
        try:  # `grader.export(...)` zips and reruns everything: otter skips it when grading too
            body = parse_python(cell.source).body
            if len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Call) \
                    and getattr(body[0].value.func, "attr", None) == "export":
                continue
        except SyntaxError:
            pass  # magics or broken code: the kernel reports what it makes of it
        cells.append((number, cell.source))
    return cells


def file_sha256(path: Path) -> str:
    """Hex digest of a file's bytes, read in chunks; '' if it cannot be read (grading then says why)."""
    digest = hashlib.sha256()
    try:
        with open_regular(path) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, Rejected):
        return ""
    return digest.hexdigest()
