"""`sgdkit grade`: a folder of submitted notebooks -> DIR/grades.csv, DIR/results/, DIR/feedback/.

No student code runs in this process. Per submission:

1. read  -- take the notebook (out of an otter export zip if need be; never its
            .OTTER_LOG or shipped folders), parse and validate it, check its stage;
2. run   -- sandbox.py executes it in an isolated child (no network, own pid
            namespace, a read-only private view of the file system, rlimits,
            timeouts) and probes each question with inputs chosen here from a
            per-submission seed; it answers in JSON, never pickle;
3. judge -- the stage's `judge` (trusted copy from the autograder zip) turns the
            probe data into verdicts, and otter's own ExceptionTestFile scores
            the zip's hidden test cases against them;
4. write -- feedback/<name>.md and results/<name>.json (atomically; a failed write is that row's
            status), then grades.csv: see outputs.py.
"""
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from . import ZIPS, isolation
from .outputs import Progress, read_result, save_result, summary_line, visible, write_grades

# Bump when grading changes in a way that should invalidate stored results.
GRADER_VERSION = "1"
MAX_NOTEBOOK_BYTES = 64 << 20
MAX_ZIP_BYTES = 256 << 20
GIB = 1 << 30
DISK = 1 << 30  # default disk cap per submission
PROCESSES = 256  # default process cap per submission (threads count: the kernel alone has about 10)
MAX_PRINTED = 1 << 20  # printed output is only counted (never kept); past this the status says so
# Worst first: the status of a submission is its worst problem; results keep all.
SEVERITY = ["tampered", "crashed", "memory", "timeout", "output-limit", "cell-error"]


def add_arguments(parser):
    parser.add_argument("--stage", required=True, help="stage to grade, e.g. 01-losses")
    parser.add_argument("--out", required=True, type=Path, help="folder for grades.csv, results/ and feedback/")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="submitted notebooks (.ipynb or otter export .zip) or folders of them")
    parser.add_argument("--workers", type=int, default=None, help="submissions graded at once (default: cores)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to run one notebook (default: from the solution's run time, generous)")
    parser.add_argument("--memory", default=None,
                        help="memory cap for all of a submission's processes together, e.g. 2G or 512M "
                             "(default: min(4G, RAM / workers))")
    parser.add_argument("--disk", default=None,
                        help=f"disk cap for all the files a submission writes (default: {DISK >> 30}G)")
    parser.add_argument("--processes", type=int, default=None,
                        help=f"process cap for a submission, threads included (default: {PROCESSES})")
    parser.add_argument("--no-namespaces", action="store_true",
                        help=f"isolate without Linux namespaces, as where unshare is refused (also: {isolation.OFF}=1)")
    parser.add_argument("--seed", type=int, default=0, help="base of the per-submission seeds (default 0)")
    parser.add_argument("--force", action="store_true",
                        help="regrade submissions that already have results (a rerun skips those graded with the "
                             "same file, autograder zip and seed; use --force after changing --timeout or --memory)")
    parser.add_argument("--compare", type=Path, default=None, metavar="OLD",
                        help="regrade preview: an earlier grades.csv (or its folder); writes DIR/changes.csv and "
                             "prints every student whose score would change")
    parser.add_argument("--docker", action="store_true",
                        help="hand the batch to otter's containerised `otter grade` (needs a Docker daemon)")


def main(args) -> int:
    if args.docker:
        return grade_in_docker(args)
    from . import compare
    try:
        # Read the old grades first: the new grading may overwrite that very folder.
        old = compare.load(args.compare) if args.compare else None
        results = grade(args.paths, args.stage, args.out, workers=args.workers, timeout=args.timeout,
                        memory=parse_size(args.memory) if args.memory else None, seed=args.seed,
                        force=args.force, disk=parse_size(args.disk, "--disk") if args.disk else None,
                        processes=args.processes, namespaces=False if args.no_namespaces else None)
    except (ValueError, FileNotFoundError) as exc:
        print(f"sgdkit grade: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsgdkit grade: interrupted; finished submissions are saved, rerun to continue", file=sys.stderr)
        return 130
    print(summary_line(results, Path(args.out)))
    if old is not None:
        compare.preview(old, args.out)
    return 0


# ---------------------------------------------------------------- the stage


@dataclass
class Stage:
    """Everything the grader needs from autograder/zips/<stage>.{zip,json}, held in memory."""

    name: str
    notebook: str
    questions: list  # autograded questions, notebook order
    manual: list
    files: dict  # path inside the zip -> bytes
    zip_sha: str
    solution_seconds: float | None
    checks: object = None  # the trusted sgdkit_checks package: judges, inputs, stand-ins (never sent)
    others: dict = field(default_factory=dict)  # other stages' notebook names -> stage

    @property
    def module(self):
        return self.checks.STAGES[self.name]

    def test_source(self, question):
        return self.files[f"tests/{question}.py"].decode("utf-8")

    def folder(self, prefix):
        """{relative path: bytes} of the zip's folder `prefix`, without caches."""
        return {path[len(prefix):]: data for path, data in self.files.items()
                if path.startswith(prefix) and not path.endswith("/") and "__pycache__" not in path}

    def public_source(self, question):
        """The question's test file with its hidden test cases cut out: all the kernel may see of it."""
        return public_only(self.test_source(question))

    def probe_files(self):
        """{path: source} of the probe package the kernel gets: probes/common.py and this stage's module."""
        probes = {path: data.decode("utf-8") for path, data in self.folder("files/sgdkit_checks/probes/").items()}
        return {path: probes[path] for path in ("__init__.py", "common.py", f"{self.probe_module}.py")}

    @property
    def probe_module(self):
        return self.module.__name__.rsplit(".", 1)[1]

    def probes(self, inputs):
        """The probe steps in prerequisite order: each question with its inputs and its prerequisites' stand-ins."""
        def stand_in(question):
            return self.files[f"files/sgdkit_checks/standins/{question}.py"].decode("utf-8")

        return [{"question": q, "inputs": inputs[q],
                 "stand_ins": {p: stand_in(p) for p in self.checks.prerequisites(q)}}
                for q in self.checks.probe_order(self.questions)]


def public_only(source):
    """An otter test file's source without the test cases marked hidden=True."""
    import ast

    tree = ast.parse(source)

    def hidden(node):
        return any(isinstance(d, ast.Call) and any(k.arg == "hidden" and getattr(k.value, "value", False) is True
                                                   for k in d.keywords) for d in node.decorator_list)

    tree.body = [node for node in tree.body if not (isinstance(node, ast.FunctionDef) and hidden(node))]
    return ast.unparse(tree)


def load_stage(stage, zips=ZIPS):
    """Read the stage's autograder zip and summary, and load its sgdkit_checks (trusted)."""
    from .sandbox import load_package

    zips = Path(zips)
    zip_path, meta_path = zips / f"{stage}.zip", zips / f"{stage}.json"
    if not zip_path.is_file() or not meta_path.is_file():
        known = sorted(p.stem for p in zips.glob("*.json")) if zips.is_dir() else []
        raise FileNotFoundError(f"no autograder for stage {stage!r} in {zips} (built: {known or 'none'}); "
                                "run `sgdkit build` first")
    raw = zip_path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        files = {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}
    meta = json.loads(meta_path.read_text())
    auto = [q["name"] for q in meta["questions"] if not q.get("manual")]
    manual = [q["name"] for q in meta["questions"] if q.get("manual")]
    missing = [q for q in auto if f"tests/{q}.py" not in files]
    if missing:
        raise ValueError(f"{zip_path} has no tests for {missing}; rebuild with `sgdkit build`")
    result = Stage(stage, meta["notebook"], auto, manual, files, hashlib.sha256(raw).hexdigest(),
                   meta.get("solution_seconds"))
    checks = {path: data.decode("utf-8") for path, data in result.folder("files/sgdkit_checks/").items()
              if path.endswith(".py")}
    # Registered as `sgdkit_checks` in this process only: the zip's hidden test cases import it by that name.
    result.checks = load_package("sgdkit_checks", checks)
    for other in zips.glob("*.json"):
        if other.stem != stage:
            try:
                result.others[json.loads(other.read_text())["notebook"]] = other.stem
            except (ValueError, KeyError):
                pass
    return result


# ---------------------------------------------------------------- submissions


@dataclass
class Submission:
    path: Path
    file: str  # the name in grades.csv: the file name, with parent folders only where names collide


def find_submissions(paths):
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
    unique = {}
    for path in found:  # the same file reached twice (through a link) is graded once
        unique.setdefault(os.path.realpath(path), Path(os.path.abspath(path)))
    return _name_uniquely(list(unique.values()))


def _notebooks_in(folder):
    """Paths named *.ipynb or *.zip under `folder`, not hidden, not in .ipynb_checkpoints."""
    found, walked = [], set()

    def unlisted(error):  # its files cannot get rows: the instructor must hear of it
        print(f"sgdkit grade: warning: could not list {visible(str(error.filename))} "
              f"({error.strerror or error}); nothing in it is graded", file=sys.stderr)

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


def _name_uniquely(paths):
    """Submissions named by their file name (shown with `visible`), with parent folders only where names collide."""
    by_name = {}
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


def _tail(path, depth):
    """The file name with `depth` parent folders, as grades.csv shows it."""
    return visible("/".join(path.parts[-depth - 1:]))


class Rejected(Exception):
    """A submission that cannot be run: `kind` is its status keyword."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def read_notebook(path):
    """The notebook's bytes: the file itself, or the single .ipynb inside an otter export zip."""
    try:
        with open_regular(path) as f:
            return _read_zip(f) if path.suffix == ".zip" else _read_file(f)
    except OSError as exc:
        raise Rejected("invalid", f"could not read the file ({exc.strerror or exc})") from None


def open_regular(path):
    """`path` opened for reading in binary, if it is a regular file (links followed); never blocks on a pipe."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Rejected("invalid", "not a regular file (a folder, pipe or device)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_file(f):
    """A notebook file's bytes, refused past MAX_NOTEBOOK_BYTES."""
    size = os.fstat(f.fileno()).st_size
    data = f.read(MAX_NOTEBOOK_BYTES + 1)  # the size may change under us: the cap holds on what is read
    if max(size, len(data)) > MAX_NOTEBOOK_BYTES:
        raise Rejected("invalid", f"file is {max(size, len(data)) >> 20} MB, more than {MAX_NOTEBOOK_BYTES >> 20} MB")
    return data


def _read_zip(f):
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


def parse_notebook(data):
    """(notebook, notes): parsed and upgraded to nbformat 4; Rejected if it is not a notebook."""
    import nbformat

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


def check_stage(nb, stage):
    """Rejected('wrong-stage') if the notebook says it belongs to another stage."""
    meta_stage = (nb.metadata.get("sgdkit") or {}).get("stage")
    if meta_stage and meta_stage != stage.name:
        raise Rejected("wrong-stage", f"this is a {meta_stage} notebook, not {stage.name}")
    for cell in nb.cells:
        match = INIT_CELL.search(cell.source) if cell.cell_type == "code" else None
        if match:
            name = os.path.basename(match.group(1))
            if name != stage.notebook and name in stage.others:
                raise Rejected("wrong-stage", f"this is a {stage.others[name]} notebook ({name}), not {stage.name}")
            return


def code_cells(nb):
    """[(number among the code cells, from 1; source)] to execute: otter's ignored cells and the export cell left out.

    Numbered among code cells only, as a student counts them: markdown cells in between do not count.
    """
    import ast

    cells = []
    for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        if not cell.source.strip():
            continue
        meta = cell.get("metadata", {})
        if "otter_ignore" in meta.get("tags", []) or (meta.get("otter") or {}).get("ignore"):
            continue
        try:  # `grader.export(...)` zips and reruns everything: otter skips it when grading too
            body = ast.parse(cell.source).body
            if len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Call) \
                    and getattr(body[0].value.func, "attr", None) == "export":
                continue
        except SyntaxError:
            pass  # magics or broken code: the kernel reports what it makes of it
        cells.append((number, cell.source))
    return cells


def seed_for(base, digest):
    """Reproducible per submission, unknowable before the notebook's content is fixed."""
    return int(hashlib.sha256(f"{base}:{digest}".encode()).hexdigest()[:15], 16)


# ---------------------------------------------------------------- the batch


@dataclass
class Settings:
    """Per-batch limits: notebook and per-question probe seconds, caps per submission, seed base, namespaces."""

    timeout: float
    probe_timeout: float
    memory: int  # bytes, for all of a submission's processes together (and RLIMIT_AS for each)
    seed: int
    disk: int = DISK  # bytes, for all its files together
    processes: int = PROCESSES
    namespaces: bool | None = None  # None: where the machine allows; False: never; True: required


def default_timeout(stage):
    """Generous: five times the solution's run time plus half a minute, at least a minute."""
    if stage.solution_seconds is None:
        return 300.0
    return max(60.0, 5 * stage.solution_seconds + 30)


def parse_size(text, option="--memory"):
    """'4G', '512M', '1.5g' or a number of bytes -> bytes."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([kKmMgG]?)i?[bB]?\s*", str(text))
    if not m:
        raise ValueError(f"{option} {text!r}: expected a size such as 4G or 512M")
    return int(float(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": GIB}[m.group(2).lower()])


def grade(paths, stage, out_dir, *, workers=None, timeout=None, memory=None, seed=0, force=False,
          zips=ZIPS, progress=None, disk=None, processes=None, namespaces=None):
    """Grade the submissions at `paths` for `stage` into `out_dir`; return their results in file order.

    namespaces=False grades without Linux namespaces (as SGDKIT_NO_NAMESPACES=1 does); True requires them.
    """
    import psutil

    spec = load_stage(stage, zips)
    subs = find_submissions(paths)
    workers = max(1, workers or os.cpu_count() or 1)
    timeout = timeout or default_timeout(spec)
    settings = Settings(timeout, max(30.0, timeout / 2),
                        memory or min(4 * GIB, psutil.virtual_memory().total // workers), seed,
                        disk or DISK, processes or PROCESSES, namespaces)
    out = Path(out_dir)
    for folder in ("results", "feedback"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    grader_id = f"{GRADER_VERSION}:{spec.zip_sha[:16]}:{seed}"

    results, todo = {}, []
    for sub in subs:
        digest = _sha256(sub.path)
        old = read_result(out, sub.file)
        if not force and old and old.get("sha256") == digest and old.get("grader") == grader_id:
            results[sub.file] = old
        else:
            todo.append((sub, digest))

    bar = Progress(len(subs), len(subs) - len(todo), progress)
    with Batch(spec, settings) as batch:
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = {pool.submit(batch.grade_one, sub, digest): sub for sub, digest in todo}
            for future in as_completed(futures):
                result = future.result()
                result["grader"] = grader_id
                save_result(out, result, spec)  # a write that fails is this row's status, not the batch's end
                results[result["file"]] = result
                bar.advance(result)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            batch.stop()
            raise
        pool.shutdown()
    bar.close()
    ordered = [results[s.file] for s in subs]
    write_grades(out / "grades.csv", spec, ordered)
    return ordered


def _sha256(path):
    """Hex digest of a file's bytes, read in chunks; '' if it cannot be read (grading then says why)."""
    digest = hashlib.sha256()
    try:
        with open_regular(path) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, Rejected):
        return ""
    return digest.hexdigest()


class Batch:
    """Shared state of one grading run: temp root, live children, cleanup even on Ctrl-C."""

    def __init__(self, spec, settings):
        from .sandbox import WATCHED, fingerprints

        self.spec, self.settings = spec, settings
        self.children = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.mode = isolation.detect(settings.namespaces)
        self.uids = set()  # the kernels' uids of this batch, when the grader is root
        # The clean interpreter's view of watched functions; the kernel's must match.
        self.reference = fingerprints(WATCHED)
        self.watched = WATCHED

    def __enter__(self):
        self.root = Path(tempfile.mkdtemp(prefix="sgdkit-grade-"))
        if self.mode.root:  # kernels of their own uids may pass through to their 0700 workdir, never list it
            os.chmod(self.root, 0o711)
            if not self.mode.prefix and not isolation.reachable(str(self.root.parent)):
                os.rmdir(self.root)
                raise ValueError(f"the temp folder {self.root.parent} is closed to other users, so kernels running "
                                 "as their own uids could not reach their folders; set TMPDIR to a folder others "
                                 "may pass through, such as /tmp")
        self.mode.cgroups = isolation.Cgroups.create()
        self.note = self.mode.describe()  # in every result's notes
        print(f"sgdkit grade: {self.note}", file=sys.stderr)
        self.fonts = threading.Thread(target=self._font_cache, daemon=True)
        self.fonts.start()
        return self

    def _font_cache(self):
        """matplotlib's font list, built once per batch (in the background) rather than in every kernel."""
        env = {**_sandbox_env(), "MPLCONFIGDIR": str(self.root / "matplotlib"), "MPLBACKEND": "Agg"}
        try:
            subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env,
                           capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError):
            pass

    def __exit__(self, *exc):
        self.stop()
        self.fonts.join(timeout=30)
        if self.mode.cgroups:
            self.mode.cgroups.close()
        for uid in self.uids if exc[0] else ():  # interrupted: the workers' own sweeps may have been cut short
            isolation.sweep(uid)
        shutil.rmtree(self.root, ignore_errors=True)

    def stop(self):
        """Kill every sandbox still running."""
        with self.lock:
            self.stopping = True
            children = list(self.children)
        for proc in children:
            kill_tree(proc)

    def grade_one(self, sub, digest):
        """One submission -> its result dict: always a row, whatever the submission (or a bug) did."""
        start = time.monotonic()
        result = empty_result(sub.file, digest, self.spec)
        try:
            result.update(self._grade(sub, result))
        except Exception as exc:  # a grader bug must not cost the rest of the batch
            print(f"sgdkit grade: internal error on {sub.file}: {type(exc).__name__}: {exc}", file=sys.stderr)
            result["status"] = f"crashed: the grader failed on this file ({type(exc).__name__}: {exc})"[:500]
            result["notes"] = [result["status"]]
        result["seconds"] = round(time.monotonic() - start, 2)
        return result

    def _grade(self, sub, result):
        from .sandbox import changed_files

        spec = self.spec
        try:
            nb_bytes = read_notebook(sub.path)
            nb, notes = parse_notebook(nb_bytes)
            check_stage(nb, spec)
        except Rejected as rejected:
            status = f"{rejected.kind}: {rejected}"
            questions = {q: score_question(spec, q, {}, None, f"not graded ({rejected.kind})") for q in spec.questions}
            return {"status": status, "notes": [status], "questions": questions,
                    "possible": sum(v["possible"] for v in questions.values())}
        seed = seed_for(self.settings.seed, hashlib.sha256(nb_bytes).hexdigest())
        inputs = {q: spec.module.make_inputs(q, seed) for q in spec.questions}
        workdir = Path(tempfile.mkdtemp(dir=self.root))
        try:
            run = self.run_sandbox(workdir, nb_bytes, code_cells(nb), inputs)
            files = next((e for e in run.events if e.get("event") == "files"), None)
            # The sandbox checks the copy the kernel saw; without its word, the folder we can see.
            run.changed = (files.get("changed") or []) if files else changed_files(str(workdir), expected_files(spec))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.rmtree(str(workdir) + ".root", ignore_errors=True)
        return {"seed": seed, **judge_run(spec, run, inputs, self.reference, [self.note] + notes,
                                          self.settings.memory)}

    def run_sandbox(self, workdir, nb_bytes, cells, inputs):
        """Start sandbox.py on this submission and collect its JSON events."""
        from . import sandbox

        spec, settings = self.spec, self.settings
        (workdir / spec.notebook).write_bytes(nb_bytes)
        for rel, data in spec.folder("files/match/").items():
            target = workdir / "match" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if not self.fonts.is_alive():  # the kernel's MPLCONFIGDIR (see sandbox.kernel_env)
            for cache in (self.root / "matplotlib").glob("fontlist-*.json"):
                (workdir / ".sgdkit" / "matplotlib").mkdir(parents=True, exist_ok=True)
                shutil.copy(cache, workdir / ".sgdkit" / "matplotlib")
        job = {
            "workdir": str(workdir), "cells": cells, "timeout": settings.timeout,
            "probe_timeout": settings.probe_timeout, "probes": spec.probes(inputs),
            "probe_files": spec.probe_files(), "probe_module": spec.probe_module,
            "package": f"_sgdkit_probe_{os.urandom(6).hex()}",
            "loader_source": _source(sandbox.load_package), "fingerprint_source": _source(sandbox.fingerprints),
            "watched": self.watched, "public": {q: spec.public_source(q) for q in spec.questions},
            "memory": settings.memory, "cpu": int(self.hard_limit()) + 60, "disk": settings.disk,
            "processes": settings.processes, "namespaces": self.mode.prefix is not None,
            "newroot": str(workdir) + ".root", "expected": expected_files(spec),
        }
        os.mkdir(job["newroot"])  # a mount point inside the sandbox's own namespace only
        cmd = (self.mode.prefix or []) + [sys.executable, "-I", sandbox.__file__]
        run = Run(cells=dict(cells))
        if self.mode.root:  # the kernel's uid: this submission's alone
            with self.lock:
                job["uid"] = isolation.new_uid(self.uids)
                self.uids.add(job["uid"])
        cgroups = self.mode.cgroups.submission(settings.memory, settings.processes) if self.mode.cgroups else {}
        job["cgroups"] = sorted(set(cgroups.values()))  # the sandbox joins them first thing
        try:
            with self.lock:  # so stop() either sees this child or prevents it
                if self.stopping:
                    run.events.append({"event": "sandbox_error", "error": "grading was interrupted"})
                    return run
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        cwd=workdir, env=_sandbox_env(), start_new_session=True)
                self.children.add(proc)
            try:
                out, err = proc.communicate(json.dumps(job).encode(), timeout=self.hard_limit())
            except subprocess.TimeoutExpired:
                run.killed = True
                kill_tree(proc)
                out, err = proc.communicate()
            finally:
                kill_tree(proc)
                with self.lock:
                    self.children.discard(proc)
        finally:  # nothing of this submission outlives it: processes, cgroups, IPC objects, temp files
            if cgroups:
                run.oom_kills = self.mode.cgroups.oom_kills(cgroups)
                self.mode.cgroups.remove(cgroups)
            if "uid" in job:
                isolation.sweep(job["uid"])
        run.stderr = err.decode("utf-8", "replace")[-2000:]
        run.returncode = proc.returncode
        for line in out.decode("utf-8", "replace").splitlines():
            try:
                run.events.append(json.loads(line))
            except ValueError:
                pass  # a line cut short by a kill
        return run

    def hard_limit(self):
        """The last resort: the sandbox keeps its own deadlines well within this."""
        s = self.settings
        return s.timeout + 2 * len(self.spec.questions) * (s.probe_timeout + 6) + 180


def _source(function):
    import inspect
    import textwrap

    return textwrap.dedent(inspect.getsource(function))


def _sandbox_env():
    """The sandbox gets no inherited secrets; it builds the kernel's environment itself."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {k: v for k, v in os.environ.items() if k in keep}


def expected_files(spec):
    """{relative path: [size, sha256]} of the library files the workdir starts with (for the tamper check)."""
    return {f"match/{rel}": [len(data), hashlib.sha256(data).hexdigest()]
            for rel, data in spec.folder("files/match/").items()}


def kill_tree(proc):
    """SIGKILL a sandbox, its process group and every descendant; reap it."""
    import signal

    import psutil

    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in descendants:
        try:
            child.kill()
        except psutil.Error:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class Run:
    """What one sandbox reported."""

    events: list = field(default_factory=list)
    stderr: str = ""
    returncode: int | None = None
    killed: bool = False
    changed: list = field(default_factory=list)
    cells: dict = field(default_factory=dict)  # cell number -> source, for messages
    oom_kills: int = 0  # processes the memory cgroup's OOM killer killed (the total memory cap)


# ---------------------------------------------------------------- judging


def empty_result(file, digest, spec):
    return {"file": file, "sha256": digest, "stage": spec.name, "status": "ok", "seed": None,
            "seconds": 0.0, "questions": {}, "total": 0.0, "possible": 0.0, "percent_correct": 0.0,
            "notes": []}


_SCORING = threading.Lock()  # `judged` verdicts are per process: one question is scored at a time


def score_question(spec, question, data_by_question, inputs, missing_reason=None, public=None):
    """Judge one question's probe data and score it with otter on the zip's hidden cases."""
    from otter.test_files import ExceptionTestFile

    module = spec.module
    parts = list(module.QUESTIONS[question])
    if missing_reason is None:
        try:
            verdicts = module.judge(question, inputs, data_by_question[question])
            verdicts = {part: verdicts.get(part, "the judge gave no verdict") for part in parts}
        except Exception as exc:  # probe data is student-influenced: malformed data is a failure
            verdicts = {part: f"probe data could not be judged ({type(exc).__name__}: {exc})"[:500]
                        for part in parts}
    else:
        verdicts = {part: missing_reason for part in parts}

    test_file = ExceptionTestFile.from_string(spec.test_source(question), path=f"tests/{question}.py")
    public_cases = [tc for tc in test_file.test_cases if not tc.hidden]
    test_file.test_cases = [tc for tc in test_file.test_cases if tc.hidden]  # points live here only
    with _SCORING, spec.checks.judged({question: verdicts}):  # `check` answers from these, in this process only
        sys.modules["sgdkit_checks"] = spec.checks  # the test cases import it by name; another stage may be loaded
        test_file.run({})

    tests = []
    for tcr in test_file.test_case_results:
        part = _part(tcr.test_case)
        entry = {"name": part, "hidden": True, "points": tcr.test_case.points, "passed": bool(tcr.passed)}
        if not tcr.passed:
            entry["hint"] = module.QUESTIONS[question].get(part, "")
        tests.append(entry)
    # Public results come from the student's kernel: feedback only, so just keep their shape sane.
    ran = {r.get("name"): r for r in (public if isinstance(public, list) else []) if isinstance(r, dict)}
    for tc in public_cases:
        got = ran.get(tc.body.test_func.__name__)
        entry = {"name": _part(tc), "hidden": False, "points": tc.points or 0,
                 "passed": bool(got and got.get("passed") is True)}
        if not entry["passed"]:
            entry["message"] = (_clean_message(str(got.get("message", ""))) if got else
                                "not run (the notebook stopped before it, or the public tests ran out of time)")
        tests.append(entry)
    return {"points": test_file.score, "possible": test_file.possible, "tests": tests,
            "details": {part: why for part, why in verdicts.items() if why is not None}}


def _part(test_case):
    name = test_case.body.test_func.__name__
    return name[len("test_"):] if name.startswith("test_") else name


def _clean_message(message):
    """otter's failure text without its '❌ Test case failed' banner."""
    return re.sub(r"^\W*Test case failed\s*", "", message or "").strip()[:2000]


@dataclass
class Reported:
    """The sandbox's events, sorted by kind."""

    notebook: dict | None = None  # how the top-to-bottom run ended
    last_cell: int | None = None
    cell_errors: list = field(default_factory=list)
    data: dict = field(default_factory=dict)  # question -> probe data
    failed: dict = field(default_factory=dict)  # question -> probe_failed event
    public: dict = field(default_factory=dict)  # question -> public test results
    fingerprints: dict | None = None
    printed: int = 0
    notes: list = field(default_factory=list)
    sandbox_error: str | None = None
    done: bool = False  # the sandbox reached its end

    @classmethod
    def from_events(cls, events):
        got = cls()
        for event in events:
            kind = event.get("event")
            if kind == "cell":
                got.last_cell = event.get("index")
            elif kind == "cell_error":
                got.cell_errors.append(event)
            elif kind == "notebook":
                got.notebook = event
            elif kind == "probe":
                got.data[event["question"]] = event.get("data")
            elif kind == "probe_failed":
                got.failed[event["question"]] = event
            elif kind == "public":
                got.public[event["question"]] = event.get("results") or []
            elif kind == "fingerprints":
                got.fingerprints = event.get("values") or {}
            elif kind == "output":
                got.printed = event.get("bytes", 0)
            elif kind == "isolation":
                got.notes += event.get("notes") or []
            elif kind == "sandbox_error":
                got.sandbox_error = event.get("error")
            elif kind == "done":
                got.done = True
        return got

    def unfinished(self, questions):
        """Why a run whose notebook finished has no complete record after it, else None.

        Every step after the notebook guards points: a probe its question, the
        tamper check every question. So when one did not report (the kernel or
        the sandbox died, or was killed, between steps), nothing counts.
        """
        if not self.notebook or self.notebook.get("state") != "done":
            return None  # the notebook itself did not finish: problems() says why, and nothing was probed
        silent = [q for q in questions if q not in self.data and q not in self.failed]
        if silent:
            return f"the run stopped before {silent[0]} was probed"
        if self.fingerprints is None:
            return "the run stopped before the tamper check reported"
        if not self.done:
            return "the grader's sandbox stopped before its end"
        return None


def problems(run, got, reference, memory):
    """{status keyword: explanation} of everything that went wrong, plus what was tampered with."""
    found = {}

    def cell(index):
        first = next((line.strip() for line in run.cells.get(index, "").splitlines() if line.strip()), "")
        return f"code cell {index} ({first[:40]}{'...' if len(first) > 40 else ''})" if first else f"code cell {index}"

    nb = got.notebook or {}
    # The cgroup's OOM killer killed some of its processes: they went past the total memory cap together.
    oom = run.oom_kills > 0
    if got.sandbox_error:
        kind = "memory" if oom or _oom(got.sandbox_error) else "crashed"
        found[kind] = f"the grader's sandbox failed ({got.sandbox_error})"
    elif run.killed:
        where = f" in {cell(got.last_cell)}" if got.last_cell else ""
        found["timeout"] = f"the grader stopped the run{where} at its hard time limit; nothing could be graded"
    elif not nb:
        found["crashed"] = (f"the grader's sandbox ended unexpectedly (exit code {run.returncode}): "
                            f"{run.stderr.strip()[-300:] or 'no message'}")
    elif nb["state"] == "timeout":
        found["timeout"] = f"{cell(nb['index'])} was still running after {nb['limit']:g} s" + (
            "; it was stopped, later cells were not run" if nb.get("recovered")
            else " and did not stop when interrupted; nothing could be graded")
    elif nb["state"] == "died":
        found["memory" if oom or _oom(nb.get("stderr", "")) else "crashed"] = \
            f"the kernel {nb.get('how')} in {cell(nb['index'])}; nothing could be graded"
    memory_errors = [e for e in got.cell_errors if e.get("ename") == "MemoryError"]
    if memory_errors:
        found.setdefault("memory", f"{cell(memory_errors[0]['index'])} ran out of memory (limit {_size(memory)})")
    if oom:
        found.setdefault("memory", f"its processes together went past the memory cap ({_size(memory)}); "
                                   f"{run.oom_kills} of them were killed")
    for question, event in got.failed.items():
        if event.get("status") == "timeout":
            found.setdefault("timeout", f"probing {question} took longer than {event['limit']:g} s; it scores 0")
        elif event.get("status") == "died":
            found.setdefault("memory" if oom else "crashed", f"{event['reason']} while {question} was probed")
    if got.printed > MAX_PRINTED:
        found["output-limit"] = f"the notebook printed {_size(got.printed)}; everything past 1 MB was dropped"
    if got.cell_errors:
        first, more = got.cell_errors[0], len(got.cell_errors) - 1
        found["cell-error"] = (f"{cell(first['index'])} raised {first['ename']}: {first.get('evalue', '')}"[:300]
                               + (f" (and {more} more cell(s))" if more else ""))
    # Tampering: a watched function replaced in the kernel, or the working folder's files rewritten.
    tampered = [f"{key.replace(':', '.')} was replaced" for key, want in reference.items()
                if got.fingerprints is not None and want[0] != "missing" and got.fingerprints.get(key) != want]
    tampered += run.changed
    if tampered:
        found["tampered"] = "; ".join(tampered[:5]) + (f" (and {len(tampered) - 5} more)" if len(tampered) > 5 else "")
    return found


def judge_run(spec, run, inputs, reference, notes, memory=None):
    """Status, per-question scores and totals from what the sandbox reported."""
    got = Reported.from_events(run.events)
    found = problems(run, got, reference, memory)
    unfinished = got.unfinished(spec.questions)
    if unfinished:
        found.setdefault("crashed", f"{unfinished}, so no question can be scored")
    notes = list(notes) + got.notes + [f"{kind}: {text}" for kind, text in found.items()]

    questions = {}
    for q in spec.questions:
        if "tampered" in found:
            reason = "tampered: " + found["tampered"]
        elif unfinished:
            reason = f"not scored: {unfinished}"
        elif q in got.data:
            reason = None
        elif q in got.failed:
            reason = f"no probe data: {got.failed[q]['reason']}"
        else:
            reason = "no probe data: the notebook's kernel did not survive to be probed"
        questions[q] = score_question(spec, q, got.data, inputs.get(q), reason, got.public.get(q))
    status = next((f"{kind}: {found[kind]}" for kind in SEVERITY if kind in found), "ok")
    total = sum(v["points"] for v in questions.values())
    possible = sum(v["possible"] for v in questions.values())
    return {"status": status, "notes": notes, "questions": questions, "total": total, "possible": possible,
            "percent_correct": round(100 * total / possible, 2) if possible else 0.0}


def _oom(text):
    """Does this error text say the memory cap was hit?"""
    signs = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "can't start new thread")
    return any(sign in (text or "") for sign in signs)


def _size(n):
    if n is None:
        return "the memory cap"
    for unit, scale in (("GiB", GIB), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


# ---------------------------------------------------------------- outputs
# grades.csv, feedback Markdown and the progress bar: see outputs.py.


# ---------------------------------------------------------------- docker


def grade_in_docker(args) -> int:
    """Hand the batch to otter's containerised `otter grade`, if a Docker daemon answers."""
    docker = shutil.which("docker")
    problem = None if docker else "the docker command is not installed"
    if docker:
        try:
            probe = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30)
            if probe.returncode != 0:
                problem = (probe.stderr.strip().splitlines() or ["docker info failed"])[-1]
        except subprocess.TimeoutExpired:
            problem = "`docker info` did not answer within 30 s"
    if problem:
        print(f"sgdkit grade --docker: no Docker daemon answers ({problem}).\n"
              "Grade without --docker to use sgdkit's own sandboxes on this machine, or upload "
              f"{ZIPS / (args.stage + '.zip')} to Gradescope (see the README).", file=sys.stderr)
        return 2
    zip_path = ZIPS / f"{args.stage}.zip"
    if not zip_path.is_file():
        print(f"sgdkit grade --docker: {zip_path} is missing; run `sgdkit build` first", file=sys.stderr)
        return 2
    otter = Path(sys.executable).with_name("otter")
    cmd = [str(otter) if otter.exists() else "otter", "grade", "-n", args.stage, "-a", str(zip_path),
           "-o", str(args.out), "--ext", "ipynb", "--no-network",
           "--containers", str(args.workers or os.cpu_count() or 1)]
    if args.timeout:
        cmd += ["--timeout", str(int(args.timeout))]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return subprocess.call(cmd + [str(p) for p in args.paths])
