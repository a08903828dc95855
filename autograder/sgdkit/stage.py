"""Read a stage's autograder (autograder/zips/<stage>.{zip,json}): the only reader of those files.

The zip holds the hidden tests, the reference library the workdir starts with,
and the trusted `sgdkit_checks` package (judges, inputs, probes, stand-ins).
Only the probes, the public tests and the prerequisites' stand-ins ever leave
this process for a kernel; see the trust boundary in docs/architecture.md.
"""
import ast
import hashlib
import io
import json
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import ZIPS

if TYPE_CHECKING:
    from .sandbox import Step

@dataclass
class Stage:
    """Everything the grader needs from autograder/zips/<stage>.{zip,json}, held in memory."""

    name: str
    notebook: str
    questions: list[str]  # autograded questions, notebook order
    manual: list[str]
    files: dict[str, bytes]  # path inside the zip -> bytes
    zip_sha: str
    solution_seconds: float | None
    checks: Any = None  # the trusted sgdkit_checks package: judges, inputs, stand-ins (never sent)
    others: dict[str, str] = field(default_factory=dict)  # other stages' notebook names -> stage
    preload: list[str] = field(default_factory=list)  # libraries its notebook imports, such as matplotlib.pyplot

    @property
    def module(self) -> ModuleType:
        """This stage's judge module: QUESTIONS, make_inputs, judge."""
        return self.checks.STAGES[self.name]

    def test_source(self, question: str) -> str:
        return self.files[f"tests/{question}.py"].decode("utf-8")

    def library_files(self) -> dict[str, list]:
        """{relative path: [size, sha256]} of the library files a workdir starts with (for the tamper check)."""
        return {f"match/{rel}": [len(data), hashlib.sha256(data).hexdigest()]
                for rel, data in self.folder("files/match/").items()}

    def folder(self, prefix: str) -> dict[str, bytes]:
        """{relative path: bytes} of the zip's folder `prefix`, without caches."""
        return {path[len(prefix):]: data for path, data in self.files.items()
                if path.startswith(prefix) and not path.endswith("/") and "__pycache__" not in path}

    def public_source(self, question: str) -> str:
        """The question's test file with its hidden test cases cut out: all the kernel may see of it."""
        return public_only(self.test_source(question))

    def probe_files(self) -> dict[str, str]:
        """{path: source} of the probe package the kernel gets: probes/common.py and this stage's module."""
        probes = {path: data.decode("utf-8") for path, data in self.folder("files/sgdkit_checks/probes/").items()}
        return {path: probes[path] for path in ("__init__.py", "common.py", f"{self.probe_module}.py")}

    @property
    def probe_module(self) -> str:
        return self.module.__name__.rsplit(".", 1)[1]

    def probes(self, inputs: dict[str, Any]) -> list["Step"]:
        """The probe steps in prerequisite order: each question with its inputs and its prerequisites' stand-ins."""
        def stand_in(question: str) -> str:
            return self.files[f"files/sgdkit_checks/standins/{question}.py"].decode("utf-8")

        return [{"question": q, "inputs": inputs[q],
                 "stand_ins": {p: stand_in(p) for p in self.checks.prerequisites(q)}}
                for q in self.checks.probe_order(self.questions)]


_AST = threading.Lock()  # CPython 3.11's ast.parse is not thread-safe (gh-106905), and the batch's workers share it


def parse_python(source: str) -> ast.Module:
    """ast.parse, one thread at a time: grading threads parse cells and test files at once."""
    with _AST:
        return ast.parse(source)


def public_only(source: str) -> str:
    """An otter test file's public test cases as plain Python: no hidden case, no otter import, no decorator.

    The kernel runs them without otter (kernel_code.public_code): PUBLIC_TESTS,
    appended here, names them in order.
    """
    tree = parse_python(source)

    def case(node: ast.FunctionDef) -> bool:  # decorated with @test_case(...)
        return any(isinstance(d, ast.Call) and getattr(d.func, "id", None) == "test_case" for d in node.decorator_list)

    def hidden(node: ast.FunctionDef) -> bool:
        return any(isinstance(d, ast.Call) and any(k.arg == "hidden" and getattr(k.value, "value", False) is True
                                                   for k in d.keywords) for d in node.decorator_list)

    def from_otter(node: ast.stmt) -> bool:
        return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "otter"

    body, public = [], []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and case(node):
            if hidden(node):
                continue
            node.decorator_list = []
            public.append(node.name)
        if not from_otter(node):
            body.append(node)
    tree.body = body
    return ast.unparse(tree) + f"\nPUBLIC_TESTS = {public!r}\n"


def read_summary(stage: str, zips: Path | str = ZIPS) -> dict[str, Any]:
    """<stage>.json as `sgdkit build` wrote it: name, notebook, questions (manual ones marked), solution_seconds.

    {} when there is none or it cannot be read: callers that need it (load_stage) say so.
    """
    try:
        summary = json.loads((Path(zips) / f"{stage}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def load_stage(stage: str, zips: Path | str = ZIPS) -> Stage:
    """Read the stage's autograder zip and summary, and load its sgdkit_checks (trusted)."""
    from .kernel_code import load_package

    zips = Path(zips)
    zip_path, meta_path = zips / f"{stage}.zip", zips / f"{stage}.json"
    if not zip_path.is_file() or not meta_path.is_file():
        known = sorted(p.stem for p in zips.glob("*.json")) if zips.is_dir() else []
        raise FileNotFoundError(f"no autograder for stage {stage!r} in {zips} (built: {known or 'none'}); "
                                "run `sgdkit build` first")
    raw = zip_path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        files = {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}
    meta = read_summary(stage, zips)
    if "questions" not in meta or "notebook" not in meta:
        raise ValueError(f"{meta_path} is not a summary `sgdkit build` wrote; rebuild with `sgdkit build`")
    auto = [q["name"] for q in meta["questions"] if not q.get("manual")]
    manual = [q["name"] for q in meta["questions"] if q.get("manual")]
    missing = [q for q in auto if f"tests/{q}.py" not in files]
    if missing:
        raise ValueError(f"{zip_path} has no tests for {missing}; rebuild with `sgdkit build`")
    result = Stage(stage, meta["notebook"], auto, manual, files, hashlib.sha256(raw).hexdigest(),
                   meta.get("solution_seconds"))
    result.preload = [name for name in meta.get("preload", []) if isinstance(name, str) and name.isascii()
                      and all(part.isidentifier() for part in name.split("."))]
    checks = {path: data.decode("utf-8") for path, data in result.folder("files/sgdkit_checks/").items()
              if path.endswith(".py")}
    # Registered as `sgdkit_checks` in this process only: the zip's hidden test cases import it by that name.
    result.checks = load_package("sgdkit_checks", checks)
    for other in zips.glob("*.json"):
        notebook = read_summary(other.stem, zips).get("notebook") if other.stem != stage else None
        if notebook:
            result.others[notebook] = other.stem
    return result
