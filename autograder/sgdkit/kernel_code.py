"""The code the sandbox runs inside the student's kernel: its snippets, and the functions they get as source.

Each snippet runs in a fresh namespace, never the student's globals (those are
handed to a probe as `env`), and writes its answer as JSON to a file the
sandbox names. load_package and fingerprints run in the grader too (loading
the stage's checks; the clean reference fingerprints) and go into the kernel
as their own source, read when this module is imported: the sandbox imports
it before its chroot, after which this file is out of reach. So they import
what they need themselves, and their annotations are strings: the kernel
never evaluates them.
"""
import inspect
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from .sandbox import Job, Step

# Watched for tampering: (module, attribute path). The parent fingerprints them in
# its own (clean) interpreter; the kernel fingerprints them after the student ran.
WATCHED = [
    ("builtins", "exec"), ("builtins", "compile"), ("builtins", "__import__"),
    ("builtins", "open"), ("builtins", "isinstance"), ("builtins", "getattr"),
    ("json", "dump"), ("json", "dumps"),
    ("math", "isclose"),
    ("numpy", "allclose"), ("numpy", "isclose"), ("numpy", "array_equal"),
    ("numpy.testing", "assert_allclose"), ("numpy.testing", "assert_array_equal"),
    ("numpy.testing", "assert_almost_equal"),
    ("doctest", "DocTestRunner.run"), ("doctest", "DocTestRunner.summarize"),
    ("doctest", "DocTestRunner.report_failure"), ("doctest", "run_docstring_examples"),
    ("otter", "Notebook.check"), ("otter", "Notebook._log_event"), ("otter", "Notebook.check_all"),
    ("otter.test_files", "ExceptionTestFile.run"), ("otter.test_files", "ExceptionTestFile.from_string"),
    ("otter.test_files", "test_case.call_func"), ("otter.test_files", "TestFile.grade"),
    ("otter.test_files", "TestFile.score"), ("otter.test_files", "TestFile.passed_all"),
    ("otter.test_files", "TestFile.possible"), ("otter.test_files", "TestCaseResult.__init__"),
    ("otter.test_files", "GradingResults.__init__"), ("otter.test_files", "GradingResults.total"),
    ("otter.execute", "Checker.check"),
]


def load_package(name: "str", files: "dict[str, str]") -> "ModuleType":
    """Import a package from {relative path: source} under `name`, never from disk or sys.modules."""
    import importlib
    import importlib.abc
    import importlib.util
    import sys as _sys

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        """Serve `name` and its submodules from `files`, ahead of every other finder."""

        def __init__(self) -> "None":
            self.sources: "dict[str, tuple[str, str]]" = {}  # module name -> (path in files, source)

        def find_spec(self, fullname: "str", path: "object" = None, target: "object" = None) -> "ModuleSpec | None":
            if fullname != name and not fullname.startswith(name + "."):
                return None
            rel = fullname[len(name):].lstrip(".").replace(".", "/")
            for candidate, package in ((rel + "/__init__.py", True), (rel + ".py", False)):
                candidate = candidate.lstrip("/")
                if candidate in files:
                    self.sources[fullname] = (candidate, files[candidate])
                    return importlib.util.spec_from_loader(fullname, self, origin=f"<{name}>/{candidate}",
                                                           is_package=package)
            return None

        def exec_module(self, module: "ModuleType") -> "None":
            candidate, source = self.sources[module.__name__]
            module.__file__ = f"<{name}>/{candidate}"
            exec(compile(source, module.__file__, "exec"), module.__dict__)

    for key in [k for k in _sys.modules if k == name or k.startswith(name + ".")]:
        del _sys.modules[key]  # a module planted under our name is never used
    finder = Finder()
    _sys.meta_path.insert(0, finder)
    try:
        package = importlib.import_module(name)
        for path in files:  # all of it now, so no later import needs the finder
            parts = path[:-len(".py")].split("/")
            if path.endswith(".py"):
                importlib.import_module(".".join([name] + parts[:-1] if parts[-1] == "__init__" else [name] + parts))
        return package
    finally:
        _sys.meta_path.remove(finder)


def fingerprints(watched: "list[tuple[str, str]]") -> "dict[str, list[Any]]":
    """{"module:attr": description} of each watched object, as it is in this interpreter."""
    import hashlib
    import importlib
    import inspect
    import sys as _sys

    def where(path: "str") -> "str":
        """A code object's file, the same however this Python is reached (see isolation.kernel_python)."""
        for prefix in sorted({_sys.prefix.rstrip("/"), _sys.base_prefix.rstrip("/")}, key=len, reverse=True):
            if path.startswith(prefix + "/"):
                return "<python>" + path[len(prefix):]
        return path

    def describe(obj: "Any") -> "list[Any]":
        if isinstance(obj, property):
            return ["property", describe(obj.fget)]
        if isinstance(obj, (classmethod, staticmethod)):
            return [type(obj).__name__, describe(obj.__func__)]
        func = getattr(obj, "__func__", obj)
        code = getattr(func, "__code__", None)
        if isinstance(code, type(describe.__code__)):
            home = _sys.modules.get(getattr(func, "__module__", None) or "")
            return ["code", type(obj).__name__, getattr(func, "__qualname__", None), where(code.co_filename),
                    code.co_firstlineno, hashlib.sha256(code.co_code).hexdigest(),
                    getattr(home, "__dict__", None) is getattr(func, "__globals__", None)]
        return ["object", type(obj).__module__ + "." + type(obj).__qualname__,
                getattr(obj, "__module__", None), getattr(obj, "__qualname__", getattr(obj, "__name__", None))]

    found = {}
    for module_name, attr in watched:
        key = f"{module_name}:{attr}"
        try:
            obj: "Any" = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = inspect.getattr_static(obj, part) if inspect.isclass(obj) else getattr(obj, part)
            found[key] = describe(obj)
        except Exception as exc:
            found[key] = ["missing", type(exc).__name__]
    return found


LOADER = inspect.getsource(load_package)
FINGERPRINTER = inspect.getsource(fingerprints)

_SNIPPET = (
    "__import__('builtins').exec(__import__('builtins').compile({source!r}, '<sgdkit>', 'exec'), "
    "{{'__name__': '__sgdkit__', '__user_ns__': __import__('builtins').globals(), "
    "'__job__': __import__('json').loads({job!r})}})"
)

_PROBE = """
import importlib, json
job = __job__
ns = {}
exec(job['loader'], ns)
package = ns['load_package'](job['package'], job['files'])
stand_ins = []
for question, source in job['stand_ins'].items():
    patches = {'__name__': job['package'] + '_standin_' + question}
    exec(compile(source, '<stand-in ' + question + '>', 'exec'), patches)
    stand_ins.append(patches['PATCHES'])
module = importlib.import_module(job['package'] + '.' + job['module'])
data = module.probe(job['question'], __user_ns__, job['inputs'], stand_ins)
with open(job['out'], 'w') as f:
    json.dump(data, f, allow_nan=False)
"""

_PUBLIC = """
import json
from otter.test_files import ExceptionTestFile
job = __job__
test_file = ExceptionTestFile.from_string(job['source'], path=job['question'] + '.py')
test_file.test_cases = [tc for tc in test_file.test_cases if not tc.hidden]
test_file.run(__user_ns__)
results = [{'name': r.test_case.body.test_func.__name__, 'passed': bool(r.passed), 'message': (r.message or '')[:4000]}
           for r in test_file.test_case_results]
with open(job['out'], 'w') as f:
    json.dump(results, f)
"""

_FINGERPRINTS = """
import json
ns = {}
exec(__job__['source'], ns)
with open(__job__['out'], 'w') as f:
    json.dump(ns['fingerprints'](__job__['watched']), f)
"""


def _snippet(source: str, job: dict[str, Any]) -> str:
    """Code for the kernel: run `source` in a fresh namespace holding `job` and the student's globals."""
    return _SNIPPET.format(source=source, job=json.dumps(job))


def probe_code(job: "Job", step: "Step", out: str) -> str:
    """Probe step's question: the probe package and its prerequisites' stand-ins are all it brings."""
    return _snippet(_PROBE, {"package": job["package"], "loader": LOADER, "files": job["probe_files"],
                             "module": job["probe_module"], "out": out, **step})


def public_code(question: str, source: str, out: str) -> str:
    """Run the public test cases of `source`, the question's test file with its hidden cases cut out."""
    return _snippet(_PUBLIC, {"source": source, "question": question, "out": out})


def fingerprint_code(out: str) -> str:
    """Fingerprint the watched functions as the kernel sees them now."""
    return _snippet(_FINGERPRINTS, {"source": FINGERPRINTER, "watched": WATCHED, "out": out})
