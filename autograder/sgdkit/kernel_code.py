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
# its own (clean) interpreter; the kernel fingerprints those of its modules that
# are loaded, after the student ran (a module never imported was never patched).
# otter is not among them: the kernel has only an inert stand-in of it (inert_otter).
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


def fingerprints(watched: "list[tuple[str, str]]", loaded_only: "bool" = False) -> "dict[str, list[Any]]":
    """{"module:attr": description} of each watched object, as it is in this interpreter (loaded_only: of the
    modules imported already, importing nothing)."""
    import hashlib
    import importlib
    import inspect
    import os
    import sys as _sys

    def where(path: "str") -> "str":
        """A code object's file, the same however this Python is reached (see isolation.reroute_python)."""
        if path.startswith("/proc/self/fd/"):  # a rerouted import: the descriptor's folder, as the parent sees it
            fd, _, rest = path[len("/proc/self/fd/"):].partition("/")
            try:
                path = os.path.join(os.readlink(f"/proc/self/fd/{fd}"), rest)
            except OSError:
                pass
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
        if loaded_only and module_name not in _sys.modules:
            continue
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

# The public tests are plain functions (stage.public_only): called as otter calls a test case (`env` gets the
# notebook's globals, every other argument the global of its name), with otter's message for a failure.
_PUBLIC = """
import inspect, json
job, env = __job__, __user_ns__
path = job['question'] + '.py'
tests = {}
exec(compile(job['source'], path, 'exec'), tests)
lines = job['source'].split('\\n')
results = []
for name in tests['PUBLIC_TESTS']:
    func = tests[name]
    try:
        func(**{arg: env if arg == 'env' else env.get(arg) for arg in inspect.signature(func).parameters})
        results.append({'name': name, 'passed': True, 'message': ''})
    except Exception as exc:
        tb, line = exc.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == path:
                line = tb.tb_lineno
            tb = tb.tb_next
        text = lines[line - 1] if line and line <= len(lines) else ''
        results.append({'name': name, 'passed': False, 'message': (
            f"Error at line {line} in test {job['question']}:\\n  {text}\\n{type(exc).__name__}: "
            + str(exc).strip("'"))[:4000]})
with open(job['out'], 'w') as f:
    json.dump(results, f)
"""

_FINGERPRINTS = """
import json
ns = {}
exec(__job__['source'], ns)
with open(__job__['out'], 'w') as f:
    json.dump(ns['fingerprints'](__job__['watched'], loaded_only=True), f)
"""

# What the notebook's locked first cell gets for `import otter` in a graded kernel: grader.check and
# grader.export do nothing there (as in otter's own grading), and cost nothing. Nothing trusts it.
_INERT_OTTER = '''
"""An inert stand-in for otter-grader in a kernel that sgdkit grades: its checks run outside this kernel."""
__version__ = "sgdkit-grading"


class Notebook:
    """otter.Notebook whose every method does nothing and returns None."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None
'''


def _snippet(source: str, job: dict[str, Any]) -> str:
    """Code for the kernel: run `source` in a fresh namespace holding `job` and the student's globals."""
    return _SNIPPET.format(source=source, job=json.dumps(job))


def probe_code(job: "Job", step: "Step", out: str) -> str:
    """Probe step's question: the probe package and its prerequisites' stand-ins are all it brings."""
    return _snippet(_PROBE, {"package": job["package"], "loader": LOADER, "files": job["probe_files"],
                             "module": job["probe_module"], "out": out, **step})


def public_code(question: str, source: str, out: str) -> str:
    """Run the public test functions of `source` (stage.public_only: plain Python, no otter)."""
    return _snippet(_PUBLIC, {"source": source, "question": question, "out": out})


def inert_otter() -> "ModuleType":
    """A fresh `otter` module that the notebook's `import otter` finds in a graded kernel."""
    import types

    module = types.ModuleType("otter", "An inert stand-in for otter-grader in a kernel that sgdkit grades.")
    exec(compile(_INERT_OTTER, "<sgdkit: inert otter>", "exec"), module.__dict__)
    return module


def fingerprint_code(out: str) -> str:
    """Fingerprint the watched functions as the kernel sees them now."""
    return _snippet(_FINGERPRINTS, {"source": FINGERPRINTER, "watched": WATCHED, "out": out})
