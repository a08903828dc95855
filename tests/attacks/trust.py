"""Attacks on the trust boundary: using whatever of the grader's enters the student's kernel.

Every attack here answers nothing itself. It hunts the kernel for functions it
did not write (the grader's judges, expected values, reference loops or
stand-ins) and answers with them, hooks the probes as they arrive, returns
values the judge might misread (nan, inf), kills the run between steps, lets a
loop delegate to a blank sibling, or makes feedback quote what it finds. Under
the design before the trust boundary each of these earned points; now nothing
that knows an answer enters the kernel before that answer was judged.
"""
from attacks import STAGES, Attack, with_cells

# Finds functions the notebook did not write: not from a notebook cell, the
# stage's own match/ copy, the standard library or site-packages. What is left
# is code the grader put into the kernel (exec'd from source, so its file name
# is "<...>"), found through sys.modules, the call stack, or the garbage
# collector (which also reaches every stand-in's __globals__).
HUNTER = r'''
import gc, os, sys, types

_ROOT = os.getcwd()


def _foreign(obj):
    code = getattr(obj, "__code__", None)
    if not isinstance(obj, types.FunctionType) or code is None:
        return False
    where = code.co_filename
    mine = "ipykernel_" in where or where.startswith("<ipython")
    shipped = where.startswith((sys.prefix, sys.base_prefix, "/usr/lib", os.path.join(_ROOT, "match")))
    return not (mine or shipped or "site-packages" in where or where.startswith("<frozen"))


def _found(names):
    seen = []
    for module in list(sys.modules.values()):
        seen += [getattr(module, name, None) for name in names]
    frame = sys._getframe()
    while frame is not None:
        for scope in (frame.f_globals, frame.f_locals):
            seen += [scope.get(name) for name in names]
        frame = frame.f_back
    seen += [obj for obj in gc.get_objects() if isinstance(obj, types.FunctionType) and obj.__name__ in names]
    return [obj for obj in dict.fromkeys(o for o in seen if o is not None and _foreign(o))]


def _call(names, *args, **kwargs):
    for fn in _found(names):
        try:
            return fn(*args, **kwargs)
        except Exception:
            pass
    raise NotImplementedError("nothing foreign to answer with")
'''

# Per stage: the student's answers as calls into whatever the hunter finds, at call time.
ORACLES = {
    "01-losses": r'''
List2D.mean = lambda self: _call({"_mean", "mean"}, self)
List2D.abs = lambda self: _call({"_abs", "abs"}, self)
Matrix.mean = lambda self: _call({"_matrix_mean", "matrix_mean"}, self)
Matrix.abs = lambda self: _call({"_matrix_abs", "matrix_abs"}, self)
mse = lambda yhat, y: _call({"mse", "_mse"}, yhat, y)
mae = lambda yhat, y: _call({"mae", "_mae"}, yhat, y)
''',
    "02-descent": r'''
split_dataset = lambda *a, **k: _call({"split_dataset", "_split_dataset"}, *a, **k)
standardize = lambda *a, **k: _call({"standardize", "_standardize"}, *a, **k)
batch_gradient_descent = lambda *a, **k: _call({"_batch_gd", "batch_gradient_descent"}, *a, **k)
stochastic_gradient_descent = lambda *a, **k: _call({"_sgd", "stochastic_gradient_descent"}, *a, **k)
minibatch_sgd = lambda *a, **k: _call({"_minibatch_sgd", "_descend", "minibatch_sgd"}, *a, **k)
''',
    "03-tradeoffs": r'''
def _either(question, *args):
    try:
        return _call({"expected"}, question, list(args))
    except NotImplementedError:
        return _call({question}, *args)

updates_per_epoch = lambda num_examples, batch_size: _either("updates_per_epoch", num_examples, batch_size)
first_epoch_below = lambda losses, target: _either("first_epoch_below", losses, target)
''',
}

# Per stage: put whatever the hunter finds in place of the student's answers (for the hooks below).
INSTALL = {
    "01-losses": r'''
def _install():
    for names, owner, attribute in (({"_mean"}, List2D, "mean"), ({"_abs"}, List2D, "abs"),
                                    ({"_matrix_mean"}, Matrix, "mean"), ({"_matrix_abs"}, Matrix, "abs")):
        for fn in _found(names):
            setattr(owner, attribute, fn)
    for name in ("mse", "mae"):
        for fn in _found({name, "_" + name}):
            _NOTEBOOK[name] = fn
''',
    "02-descent": r'''
def _install():
    for names, name in (({"_batch_gd"}, "batch_gradient_descent"), ({"_sgd"}, "stochastic_gradient_descent"),
                        ({"_minibatch_sgd", "_descend"}, "minibatch_sgd"), ({"_split_dataset"}, "split_dataset"),
                        ({"_standardize"}, "standardize")):
        for fn in _found(names):
            _NOTEBOOK[name] = fn
''',
    "03-tradeoffs": r'''
def _install():
    for fn in _found({"expected"}):
        _NOTEBOOK["updates_per_epoch"] = lambda n, b, fn=fn: fn("updates_per_epoch", [n, b])
        _NOTEBOOK["first_epoch_below"] = lambda losses, target, fn=fn: fn("first_epoch_below", [losses, target])
''',
}

# Hooks that run _install() when the grader's code arrives or runs: every kind the issue lists.
_GUARD = r'''
import threading, time
_NOTEBOOK = globals()
_busy = threading.local()
_last = [0.0]


def _steal(*args, **kwargs):
    # The hunt itself fires hooks (audit events, imports, calls); and at most 20 hunts a second,
    # or a hook on every call would only make the probes time out.
    if getattr(_busy, "on", False) or time.monotonic() - _last[0] < 0.1:
        return
    _busy.on = True
    try:
        _install()
    except Exception:
        pass
    finally:
        _busy.on, _last[0] = False, time.monotonic()
'''
HOOKS = {
    "input-transformer": "get_ipython().input_transformers_post.append(lambda lines: (_steal(), lines)[1])",
    "pre-execute": "get_ipython().events.register('pre_execute', _steal)",
    "run-cell-async": r'''
_shell = get_ipython()
_original = _shell.run_cell_async

async def _run_cell_async(*args, **kwargs):
    _steal()
    return await _original(*args, **kwargs)

_shell.run_cell_async = _run_cell_async
''',
    "settrace": r'''
import sys

def _tracer(frame, event, arg):
    if frame.f_code.co_filename.startswith("<") and not frame.f_code.co_filename.startswith("<frozen"):
        _steal()
    return None

sys.settrace(_tracer)
''',
    "setprofile": r'''
import sys

def _profiler(frame, event, arg):
    if event == "call" and frame.f_code.co_filename.startswith("<") \
            and not frame.f_code.co_filename.startswith("<frozen"):
        _steal()

sys.setprofile(_profiler)
''',
    "audit-hook": r'''
import sys
sys.addaudithook(lambda event, args: _steal() if event in ("exec", "compile", "import") else None)
''',
    "polling-thread": r'''
def _poll():
    while True:
        _steal()
        time.sleep(0.002)

threading.Thread(target=_poll, daemon=True).start()
''',
    "meta-path": r'''
import sys

class _Spy(list):
    """sys.meta_path itself, wrapped: whoever adds or removes an import finder (a loader of code) is watched."""

    def insert(self, *args):
        super().insert(*args)
        _steal()

    def remove(self, finder):
        super().remove(finder)
        _steal()

sys.meta_path = _Spy(sys.meta_path)
''',
    "self-restoring-exec": r'''
import builtins
_real_exec = builtins.exec

_checked = []

def _exec(source, *args, **kwargs):
    _steal()
    if "fingerprints" in str(source):  # put the real one back just before the tamper check looks
        _checked.append(True)
        builtins.exec = _real_exec
    return _real_exec(source, *args, **kwargs)

def _keep():
    while not _checked:
        if builtins.exec is _real_exec:
            builtins.exec = _exec
        time.sleep(0.002)

builtins.exec = _exec
threading.Thread(target=_keep, daemon=True).start()
''',
    "private-builtins": r'''
import builtins, types
_fake = types.ModuleType("builtins")
_fake.__dict__.update(builtins.__dict__)

def _fake_exec(source, *args, **kwargs):
    _steal()
    return builtins.exec(source, *args, **kwargs)

def _fake_import(name, *args, **kwargs):
    module = builtins.__import__(name, *args, **kwargs)
    return _fake if name == "builtins" else module

_fake.exec, _fake.__import__ = _fake_exec, _fake_import
__builtins__ = _fake
''',
}

# Non-finite answers, and the patches that would carry them past the probe's own checks.
NAN = {
    "01-losses": r'''
import math
math.isfinite = lambda x: True
NAN = float("nan")
List2D.mean = lambda self: NAN
List2D.abs = lambda self: List2D(self.nrow, self.ncol, NAN)

def _nan_gradient(self):
    result = Matrix(List2D(1, 1, NAN), children=(self,))
    def _gradient():
        self.grad += List2D(self.nrow, self.ncol, NAN)
    result._gradient = _gradient
    return result

Matrix.mean = _nan_gradient
Matrix.abs = lambda self: Matrix(List2D(self.nrow, self.ncol, NAN), children=(self,))
mse = mae = lambda yhat, y: _nan_gradient(yhat)
''',
    "02-descent": r'''
import math
math.isfinite = lambda x: True

def _diverge(model, loss_fn, train, valid, learning_rate, num_epochs, *rest, **kwargs):
    for p in model.parameters():
        p.data = p.data * float("nan")
    return [float("nan")] * len(train) * num_epochs, [float("inf")] * num_epochs

batch_gradient_descent = stochastic_gradient_descent = minibatch_sgd = _diverge
''',
    "03-tradeoffs": r'''
updates_per_epoch = lambda num_examples, batch_size: float("nan")
first_epoch_below = lambda losses, target: float("inf")
''',
}
# json itself made to write NaN and 1e999 where the probe asked it not to.
JSON_NAN = r'''
import json, json.encoder
_iterencode = json.encoder.JSONEncoder.iterencode

def _lenient(self, o, _one_shot=False):
    self.allow_nan = True
    return _iterencode(self, o, _one_shot)

json.encoder.JSONEncoder.iterencode = _lenient
'''

# The solution's answers, so that only the kill before the tamper check is being tested.
ANSWERS = {
    "01-losses": r'''
List2D.mean = lambda self: self.sum() / (self.nrow * self.ncol)
List2D.abs = lambda self: List2D(self.nrow, self.ncol, [[abs(v) for v in row] for row in self.vals])

def _mean(self):
    result = Matrix(List2D(1, 1, self.data.mean()), children=(self,))
    def _gradient():
        self.grad += List2D(self.nrow, self.ncol, result.grad.vals[0][0] / (self.nrow * self.ncol))
    result._gradient = _gradient
    return result

def _abs(self):
    result = Matrix(self.data.abs(), children=(self,))
    def _gradient():
        self.grad += ((self.data > 0) - (self.data < 0)) * result.grad
    result._gradient = _gradient
    return result

Matrix.mean, Matrix.abs = _mean, _abs
mse = lambda yhat, y: ((yhat - y) ** 2).mean()
mae = lambda yhat, y: (yhat - y).abs().mean()
''',
}
# A cheat the tamper check catches, then the kernel or its sandbox killed before the check runs.
KILLS = {
    "kill-kernel": r'''
import numpy, os, signal
numpy.allclose = lambda *args, **kwargs: True

def _before_the_check(lines):
    if "fingerprints" in "".join(lines):
        os.kill(os.getpid(), signal.SIGKILL)
    return lines

get_ipython().input_transformers_post.append(_before_the_check)
''',
    "term-sandbox": r'''
import numpy, os, signal
numpy.allclose = lambda *args, **kwargs: True

def _before_the_check(lines):
    if "fingerprints" in "".join(lines):
        os.kill(os.getppid(), signal.SIGTERM)  # the sandbox that started this kernel
    return lines

get_ipython().input_transformers_post.append(_before_the_check)
''',
    "exit-at-check": r'''
import builtins, numpy, os
numpy.allclose = lambda *args, **kwargs: True
_real_exec = builtins.exec

def _exec(source, *args, **kwargs):
    if "fingerprints" in str(source):
        os._exit(0)
    return _real_exec(source, *args, **kwargs)

builtins.exec = _exec
''',
}

# The loops call a sibling the student left blank.
SIBLINGS = {
    "siblings-call-minibatch": r'''
def batch_gradient_descent(model, loss_fn, train, valid, learning_rate, num_epochs):
    return minibatch_sgd(model, loss_fn, train, valid, learning_rate, num_epochs, len(train), None)

def stochastic_gradient_descent(model, loss_fn, train, valid, learning_rate, num_epochs, rng):
    return minibatch_sgd(model, loss_fn, train, valid, learning_rate, num_epochs, 1, rng)
''',
    "minibatch-calls-siblings": r'''
def minibatch_sgd(model, loss_fn, train, valid, learning_rate, num_epochs, batch_size, rng):
    if batch_size == 1:
        return stochastic_gradient_descent(model, loss_fn, train, valid, learning_rate, num_epochs, rng)
    return batch_gradient_descent(model, loss_fn, train, valid, learning_rate, num_epochs)

def batch_gradient_descent(model, loss_fn, train, valid, learning_rate, num_epochs):
    return minibatch_sgd(model, loss_fn, train, valid, learning_rate, num_epochs, len(train), None)
''',
}

# What must never reach feedback: text only the grader's hidden code holds.
HIDDEN_MARKERS = ["def judge", "make_inputs", "PATCHES", "def _descend", "def expected", "PREREQUISITES",
                  "numerical_gradient", "rel_error", "result.grad.vals[0][0] /"]
# A public test's failure message quotes repr() of what the student returned: make that repr the
# grader's own sources, from anything loaded in the kernel (the probe job's dict included).
LEAK = r'''
import gc, sys, types

class _Leak:
    def __repr__(self):
        found = []
        for obj in gc.get_objects():
            if isinstance(obj, dict):
                for value in list(obj.values())[:200]:
                    text = value if isinstance(value, str) else " ".join(v for v in value if isinstance(v, str)) \
                        if isinstance(value, tuple) else ""
                    # Spelled in pieces, so that this cell's own source (in IPython's history) is not a find.
                    if any(m in text for m in ("def " + "judge", "def " + "make_inputs", "PAT" + "CHES",
                                               "def " + "_descend")):
                        found.append(text)
        return "LEAK " + " ".join(found)[:20000]
'''
LEAK_ANSWERS = {
    "01-losses": "List2D.mean = lambda self: _Leak()\nmse = mae = lambda yhat, y: _Leak()",
    "02-descent": "split_dataset = standardize = lambda *a, **k: _Leak()\n"
                  "batch_gradient_descent = stochastic_gradient_descent = minibatch_sgd = lambda *a, **k: _Leak()",
    "03-tradeoffs": "updates_per_epoch = first_epoch_below = lambda *a, **k: _Leak()",
}


def _attacks():
    found = []
    for stage in STAGES:
        found.append(Attack(f"{stage}-oracle-hunter.ipynb", stage, with_cells(HUNTER, ORACLES[stage]),
                            "calls the grader's judges, stand-ins or reference loops found in the kernel"))
        found.append(Attack(f"{stage}-leak.ipynb", stage, with_cells(LEAK, LEAK_ANSWERS[stage]),
                            "a public-test message quotes the grader's sources into feedback",
                            extra={"feedback_lacks": HIDDEN_MARKERS}))
        found.append(Attack(f"{stage}-nan.ipynb", stage, with_cells(NAN[stage]),
                            "nan compares False against every tolerance, so it passed the judge"))
        found.append(Attack(f"{stage}-json-nan.ipynb", stage, with_cells(JSON_NAN, NAN[stage]),
                            "NaN tokens in the probe's JSON became nan in the judge"))
        for hook in ("polling-thread", "settrace") if stage != "01-losses" else ():
            found.append(Attack(f"{stage}-hook-{hook}.ipynb", stage,
                                with_cells(HUNTER, _GUARD, INSTALL[stage], HOOKS[hook]),
                                f"a {hook} hook swaps in the grader's answers as a probe arrives"))
    for hook, source in HOOKS.items():
        found.append(Attack(f"01-losses-hook-{hook}.ipynb", "01-losses",
                            with_cells(HUNTER, _GUARD, INSTALL["01-losses"], source),
                            f"a {hook} hook swaps in the grader's answers as a probe arrives"))
    for name, source in KILLS.items():
        found.append(Attack(f"01-losses-{name}.ipynb", "01-losses", with_cells(ANSWERS["01-losses"], source),
                            "a tampered run killed before the tamper check kept its points, status ok",
                            status="crashed"))
    for name, source in SIBLINGS.items():
        found.append(Attack(f"02-descent-{name}.ipynb", "02-descent", with_cells(source),
                            "a loop calling a blank sibling was graded with a correct stand-in sibling"))
    return found


ATTACKS = _attacks()
