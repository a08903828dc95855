"""Stage 01-losses: List2D.mean/abs, the gradients of Matrix.mean/abs, MSE and MAE.

`probe` runs in the student's kernel without numpy: it runs the student's code
on the inputs and returns plain data, including the student's analytic
gradients. `judge` recomputes everything with numpy, gradients by central
differences on the true function, so nothing the student wrote decides a
verdict.
"""
import contextlib
import math

import numpy as np

from .common import Failed, describe, judge_parts, numerical_gradient, rel_error

QUESTIONS = {
    "list2d_mean": {
        "value": "List2D.mean() must return sum / (nrow * ncol) as a number, on a non-square List2D",
        "shapes": "List2D.mean() must work for any shape (1x1, one row, one column) "
        "and leave the List2D unchanged",
    },
    "list2d_abs": {
        "value": "List2D.abs() must give |x| of every entry: negatives flipped, positives and zeros kept",
        "new_list2d": "x.abs() and abs(x) must return a new List2D of x's shape and leave x unchanged",
    },
    "matrix_mean": {
        "gradient": "Matrix.mean's _gradient must add result.grad / (nrow * ncol) to every entry "
        "of self.grad (checked with an upstream gradient that is not 1)",
        "accumulates": "Matrix.mean's _gradient must add into self.grad (+=), not replace it: "
        "a Matrix whose mean is taken twice gets both shares",
    },
    "matrix_abs": {
        "gradient": "Matrix.abs's _gradient must add sign(x) * result.grad to self.grad "
        "(checked with an upstream gradient that is not 1)",
        "accumulates": "Matrix.abs's _gradient must add into self.grad (+=), not replace it: "
        "a Matrix used in two abs() nodes gets both shares",
        "at_zero": "Where x is exactly 0, Matrix.abs's gradient may be any value in [-1, 1] "
        "times result.grad, and sign(x) * result.grad everywhere else",
    },
    "losses": {
        "mse_value": "mse(yhat, y) must return a 1x1 Matrix holding the mean of (yhat - y)**2 "
        "and leave yhat and y unchanged",
        "mse_gradient": "mse(yhat, y) must be built from Matrix operations, so that backward() "
        "gives yhat the gradient 2 * (yhat - y) / N",
        "mae_value": "mae(yhat, y) must return a 1x1 Matrix holding the mean of |yhat - y| "
        "and leave yhat and y unchanged",
        "mae_gradient": "mae(yhat, y) must be built from Matrix operations, so that backward() "
        "gives yhat the gradient sign(yhat - y) / N",
    },
}

TOLERANCE = 1e-7  # CS231n: a relative error up to 1e-7 is a correct gradient


# Inputs: chosen by the grader, plain JSON lists


def make_inputs(question, seed):
    """JSON inputs for `question`, drawn from numpy's default_rng seeded with `seed`."""
    rng = np.random.default_rng([seed, list(QUESTIONS).index(question)])
    r, c = (int(n) for n in rng.choice(np.arange(2, 6), size=2, replace=False))
    if question == "list2d_mean":
        return {
            "value": _uniform(rng, (r, c)),
            "shapes": [_uniform(rng, shape) for shape in [(1, 1), (1, c), (r, 1), (c, r)]],
        }
    if question == "list2d_abs":
        return {"x": _with_zeros(rng, (r, c))}
    if question == "matrix_mean":
        return {
            "gradient": [
                {"x": _uniform(rng, shape), "upstream": _away_from_zero(rng, (1, 1), 0.5)}
                for shape in [(r, c), (1, c), (r, 1)]
            ],
            "accumulates": {"x": _uniform(rng, (c, r)), "upstream": _two_upstreams(rng, (1, 1))},
        }
    if question == "matrix_abs":
        return {
            "gradient": [
                {"x": _away_from_zero(rng, shape), "upstream": _away_from_zero(rng, shape, 0.5)}
                for shape in [(r, c), (c, r)]
            ],
            "accumulates": {"x": _away_from_zero(rng, (r, c)), "upstream": _two_upstreams(rng, (r, c))},
            "at_zero": {"x": _with_zeros(rng, (r, c)), "upstream": _away_from_zero(rng, (r, c), 0.5)},
        }
    if question == "losses":
        cases = {}
        for loss in ("mse", "mae"):
            n = int(rng.integers(4, 10))
            y = np.array(_uniform(rng, (n, 1)))
            # yhat - y stays at least 0.1 from the kink of |yhat - y|.
            yhat = y + np.array(_away_from_zero(rng, (n, 1)))
            upstream = _away_from_zero(rng, (1, 1), 0.5)
            cases[loss] = {"yhat": yhat.tolist(), "y": y.tolist(), "upstream": upstream}
        return cases
    raise KeyError(f"stage 01-losses has no question {question!r}")


def _uniform(rng, shape):
    return rng.uniform(-3.0, 3.0, size=shape).tolist()


def _away_from_zero(rng, shape, low=0.1):
    """Entries with |x| in [low, 2], both signs present when there are two or more.

    low = 0.1 keeps inputs of abs far more than 10h (h = 1e-5) from its kink, so
    central differences never straddle it.
    """
    n = int(np.prod(shape))
    # Both signs, so that a bug which only breaks one sign always shows.
    signs = rng.permutation(np.resize([-1.0, 1.0], n)) if n > 1 else rng.choice([-1.0, 1.0], size=1)
    return (signs * rng.uniform(low, 2.0, size=n)).reshape(shape).tolist()


def _two_upstreams(rng, shape):
    """Two upstream gradients of equal signs entry by entry.

    The reused node's gradient is their sum; with opposite signs an entry of it
    could be near 0, where central differences' rounding error (about
    eps * |f| / h) exceeds 1e-7 of the entry and fails a correct answer.
    """
    first = np.array(_away_from_zero(rng, shape, 0.5))
    second = np.sign(first) * rng.uniform(0.5, 2.0, size=shape)
    return [first.tolist(), second.tolist()]


def _with_zeros(rng, shape):
    """Entries away from zero except about a third of them, which are exactly 0.0."""
    x = np.array(_away_from_zero(rng, shape))
    zeros = rng.choice(x.size, size=max(1, x.size // 3), replace=False)
    x.flat[zeros] = 0.0
    return x.tolist()


# Stand-ins: obviously correct answers that replace the student's answers to the
# questions not being probed, so that one bug costs points in one question only.


def _mean(self):
    """List2D.mean: sum / (nrow * ncol)."""
    return sum(sum(row) for row in self.vals) / (self.nrow * self.ncol)


def _abs(self):
    """List2D.abs: element-wise |x|, in a new List2D."""
    return type(self)(self.nrow, self.ncol, [[abs(v) for v in row] for row in self.vals])


def _matrix_mean(self):
    """Matrix.mean: a 1x1 mean whose gradient adds result.grad / n everywhere."""
    List2D = type(self.data)
    result = type(self)(List2D(1, 1, _mean(self.data)), children=(self,))

    def _gradient():
        n = self.nrow * self.ncol
        self.grad += List2D(self.nrow, self.ncol, result.grad.vals[0][0] / n)

    result._gradient = _gradient
    return result


def _matrix_abs(self):
    """Matrix.abs: element-wise |x| whose gradient adds sign(x) * result.grad."""
    List2D = type(self.data)
    result = type(self)(_abs(self.data), children=(self,))

    def _gradient():
        sign = [[float((v > 0) - (v < 0)) for v in row] for row in self.data.vals]
        self.grad += List2D(self.nrow, self.ncol, sign) * result.grad

    result._gradient = _gradient
    return result


def _abs_dunder(self):
    """abs(x), routed to x.abs()."""
    return self.abs()


# question: (class name in the notebook, attribute, stand-in)
_ANSWERS = {
    "list2d_mean": ("List2D", "mean", _mean),
    "list2d_abs": ("List2D", "abs", _abs),
    "matrix_mean": ("Matrix", "mean", _matrix_mean),
    "matrix_abs": ("Matrix", "abs", _matrix_abs),
}
_MISSING = object()


@contextlib.contextmanager
def _stand_ins(env, question):
    """Put the stand-ins on env's classes for every answer but `question`'s; restore after."""
    swaps = []
    for other, (class_name, attribute, stand_in) in _ANSWERS.items():
        if other != question:
            cls = env[class_name]
            swaps.append((cls, attribute, stand_in))
            if attribute == "abs":  # a student may have rebound __abs__ as well
                swaps.append((cls, "__abs__", _abs_dunder))
    saved = [(cls, attribute, cls.__dict__.get(attribute, _MISSING)) for cls, attribute, _ in swaps]
    try:
        for cls, attribute, stand_in in swaps:
            setattr(cls, attribute, stand_in)
        yield
    finally:
        for cls, attribute, old in reversed(saved):
            if old is _MISSING:
                delattr(cls, attribute)
            else:
                setattr(cls, attribute, old)


# Probe: runs the student's code; no numpy, every student error becomes data


def probe(question, env, inputs):
    """Run the student's answer to `question` on `inputs`; plain JSON data back."""
    try:
        with _stand_ins(env, question):
            return _PROBES[question](env, inputs)
    except Exception as exc:
        return {"error": describe(exc)}


def _attempt(fn):
    """{"ok": fn()}, or {"error": ...} when the student's code raises."""
    try:
        return {"ok": fn()}
    except Exception as exc:
        return {"error": describe(exc)}


def _number(value):
    """A finite float from whatever the student returned, else an error."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {number}")
    return number


def _grid(value):
    """Rows of floats from a List2D (its .vals) or a list of row lists, else an error."""
    rows = getattr(value, "vals", value)
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, (list, tuple)) for row in rows):
        raise TypeError(f"expected a List2D or a list of rows, got {type(value).__name__}")
    return [[_number(v) for v in row] for row in rows]


def _matrix(env, rows):
    """A fresh leaf Matrix holding `rows`."""
    return env["Matrix"](env["List2D"](len(rows), len(rows[0]), rows))


def _probe_list2d_mean(env, inputs):
    def case(rows):
        x = env["List2D"](len(rows), len(rows[0]), rows)
        return {"mean": _attempt(lambda: _number(x.mean())), "after": _attempt(lambda: _grid(x))}

    return {"value": case(inputs["value"]), "shapes": [case(rows) for rows in inputs["shapes"]]}


def _probe_list2d_abs(env, inputs):
    List2D, rows = env["List2D"], inputs["x"]

    def case(call):
        x = List2D(len(rows), len(rows[0]), rows)
        try:
            result = call(x)
        except Exception as exc:
            return {"error": describe(exc)}
        return {
            "is_list2d": isinstance(result, List2D),
            "is_x": result is x,
            "shape": _attempt(lambda: [int(result.nrow), int(result.ncol)]),
            "vals": _attempt(lambda: _grid(result)),
            "after": _attempt(lambda: _grid(x)),
        }

    return {"method": case(lambda x: x.abs()), "builtin": case(abs)}


def _probe_matrix_mean(env, inputs):
    def gradient(case):
        x = _matrix(env, case["x"])
        out = x.mean()
        forward = _grid(out.data)
        (out * _matrix(env, case["upstream"])).backward()
        return {"forward": forward, "grad": _grid(x.grad)}

    def accumulates(case):
        x = _matrix(env, case["x"])
        first, second = x.mean(), x.mean()  # two nodes with the same child
        c1, c2 = (_matrix(env, c) for c in case["upstream"])
        (first * c1 + second * c2).backward()
        return {"grad": _grid(x.grad)}

    return {
        "gradient": [_attempt(lambda: gradient(case)) for case in inputs["gradient"]],
        "accumulates": _attempt(lambda: accumulates(inputs["accumulates"])),
    }


def _probe_matrix_abs(env, inputs):
    def gradient(case):
        x = _matrix(env, case["x"])
        out = x.abs()
        forward = _grid(out.data)
        (out * _matrix(env, case["upstream"])).sum().backward()
        return {"forward": forward, "grad": _grid(x.grad)}

    def accumulates(case):
        x = _matrix(env, case["x"])
        g1, g2 = (_matrix(env, g) for g in case["upstream"])
        ((x.abs() * g1).sum() + (abs(x) * g2).sum()).backward()  # two nodes with the same child
        return {"grad": _grid(x.grad)}

    return {
        "gradient": [_attempt(lambda: gradient(case)) for case in inputs["gradient"]],
        "accumulates": _attempt(lambda: accumulates(inputs["accumulates"])),
        "at_zero": _attempt(lambda: gradient(inputs["at_zero"])),
    }


def _probe_losses(env, inputs):
    def case(name, case):
        yhat, y = _matrix(env, case["yhat"]), _matrix(env, case["y"])
        try:
            out = env[name](yhat, y)
        except Exception as exc:
            return {"error": describe(exc)}

        def gradient():
            (out * _matrix(env, case["upstream"])).backward()
            return _grid(yhat.grad)

        return {
            "is_matrix": isinstance(out, env["Matrix"]),
            "value": _attempt(lambda: _grid(out.data)),
            "inputs_after": _attempt(lambda: [_grid(yhat.data), _grid(y.data)]),
            "grad": _attempt(gradient),
        }

    return {name: case(name, inputs[name]) for name in ("mse", "mae")}


_PROBES = {
    "list2d_mean": _probe_list2d_mean,
    "list2d_abs": _probe_list2d_abs,
    "matrix_mean": _probe_matrix_mean,
    "matrix_abs": _probe_matrix_abs,
    "losses": _probe_losses,
}


# Judge: pure numpy on the probe's data, no student objects


def judge(question, inputs, data):
    """{part: None if it passed, else a short failure message}."""
    return judge_parts(QUESTIONS[question], data, lambda part: _JUDGES[question][part](inputs, data))


def _ok(entry, what):
    """The value the student's code produced, or a failure naming its error."""
    if "error" in entry:
        raise Failed(f"{what} raised {entry['error']}")
    return entry["ok"]


def _array(rows, want_shape, what):
    """`rows` as a float array of `want_shape`, or a failure."""
    try:
        got = np.array(rows, dtype=float)
    except ValueError:
        raise Failed(f"{what} has rows of different lengths") from None
    if got.shape != tuple(want_shape):
        raise Failed(f"{what} has shape {got.shape}, expected {tuple(want_shape)}")
    return got


def _close(got, want, what):
    want = np.asarray(want, dtype=float)
    got = _array(got, want.shape, what)
    error = rel_error(got, want)
    if error > TOLERANCE:
        raise Failed(f"{what} is off: relative error {error:.1e} > {TOLERANCE:g}")


def _unchanged(rows, original, what):
    if _array(rows, np.shape(original), what).tolist() != original:
        raise Failed(f"{what} changed its input")


def _mean_value(inputs, data):
    x = np.array(inputs["value"])
    _close(_ok(data["value"]["mean"], "List2D.mean()"), x.mean(), f"List2D.mean() of a {x.shape} List2D")


def _mean_shapes(inputs, data):
    for rows, case in zip(inputs["shapes"], data["shapes"], strict=True):
        x = np.array(rows)
        what = f"List2D.mean() of a {x.shape} List2D"
        _close(_ok(case["mean"], what), x.mean(), what)
        _unchanged(_ok(case["after"], what), rows, what)


def _abs_value(inputs, data):
    case = data["method"]
    if "error" in case:
        raise Failed(f"x.abs() raised {case['error']}")
    x = np.array(inputs["x"])
    _close(_ok(case["vals"], "x.abs()"), np.abs(x), "x.abs()")


def _abs_new_list2d(inputs, data):
    shape = list(np.shape(inputs["x"]))
    for key, what in (("method", "x.abs()"), ("builtin", "abs(x)")):
        case = data[key]
        if "error" in case:
            raise Failed(f"{what} raised {case['error']}")
        if case["is_list2d"] is not True:
            raise Failed(f"{what} did not return a List2D")
        if case["is_x"] is not False:
            raise Failed(f"{what} returned x itself, not a new List2D")
        if _ok(case["shape"], what) != shape:
            raise Failed(f"{what} has nrow, ncol {case['shape']['ok']}, expected {shape}")
        _array(_ok(case["vals"], what), shape, what)
        _unchanged(_ok(case["after"], what), inputs["x"], what)


def _matrix_mean_gradient(inputs, data):
    for case, got in zip(inputs["gradient"], data["gradient"], strict=True):
        x, upstream = np.array(case["x"]), case["upstream"][0][0]
        what = f"Matrix.mean() of a {x.shape} Matrix"
        got = _ok(got, what)
        _close(got["forward"], [[x.mean()]], f"the value of {what}")
        want = numerical_gradient(lambda v: upstream * v.mean(), x)
        _close(got["grad"], want, f"the gradient of {what} times {upstream:.3g}")


def _matrix_mean_accumulates(inputs, data):
    case = inputs["accumulates"]
    x, (c1, c2) = np.array(case["x"]), (c[0][0] for c in case["upstream"])
    got = _ok(data["accumulates"], "x.mean() * c1 + x.mean() * c2")
    want = numerical_gradient(lambda v: c1 * v.mean() + c2 * v.mean(), x)
    _close(got["grad"], want, "the gradient of x.mean() * c1 + x.mean() * c2")


def _matrix_abs_gradient(inputs, data):
    for case, got in zip(inputs["gradient"], data["gradient"], strict=True):
        x, upstream = np.array(case["x"]), np.array(case["upstream"])
        what = f"Matrix.abs() of a {x.shape} Matrix"
        got = _ok(got, what)
        _close(got["forward"], np.abs(x), f"the value of {what}")
        want = numerical_gradient(lambda v: (np.abs(v) * upstream).sum(), x)
        _close(got["grad"], want, f"the gradient of {what} with upstream G")


def _matrix_abs_accumulates(inputs, data):
    case = inputs["accumulates"]
    x, (g1, g2) = np.array(case["x"]), (np.array(g) for g in case["upstream"])
    got = _ok(data["accumulates"], "(x.abs() * G1).sum() + (abs(x) * G2).sum()")
    want = numerical_gradient(lambda v: (np.abs(v) * g1).sum() + (np.abs(v) * g2).sum(), x)
    _close(got["grad"], want, "the gradient of (x.abs() * G1).sum() + (abs(x) * G2).sum()")


def _matrix_abs_at_zero(inputs, data):
    case = inputs["at_zero"]
    x, upstream = np.array(case["x"]), np.array(case["upstream"])
    got = _ok(data["at_zero"], "Matrix.abs() of a Matrix with zeros")
    grad = _array(got["grad"], x.shape, "the gradient of Matrix.abs()")
    zero = x == 0
    # Any subgradient s in [-1, 1] at 0 gives s * G there; the 1e-12 allows rounding in s * G.
    if np.any(np.abs(grad[zero]) > np.abs(upstream[zero]) * (1 + 1e-12)):
        raise Failed("the gradient of Matrix.abs() at 0 is outside [-1, 1] * result.grad")
    want = numerical_gradient(lambda v: (np.abs(v) * upstream).sum(), x)
    _close(grad[~zero], want[~zero], "the gradient of Matrix.abs() away from 0")


def _loss_judges(name, loss):
    """The value and gradient judges of one loss, loss(d) being its numpy form of d = yhat - y."""

    def value(inputs, data):
        case, got = inputs[name], data[name]
        call = f"{name}(yhat, y)"
        if "error" in got:
            raise Failed(f"{call} raised {got['error']}")
        if got["is_matrix"] is not True:
            raise Failed(f"{call} did not return a Matrix")
        yhat, y = np.array(case["yhat"]), np.array(case["y"])
        _close(_ok(got["value"], call), [[loss(yhat - y)]], f"the value of {call}")
        after = _ok(got["inputs_after"], call)
        _unchanged(after[0], case["yhat"], f"{call} (yhat)")
        _unchanged(after[1], case["y"], f"{call} (y)")

    def gradient(inputs, data):
        case, got = inputs[name], data[name]
        call = f"{name}(yhat, y)"
        if "error" in got:
            raise Failed(f"{call} raised {got['error']}")
        yhat, y, upstream = np.array(case["yhat"]), np.array(case["y"]), case["upstream"][0][0]
        want = numerical_gradient(lambda v: upstream * loss(v - y), yhat)
        _close(_ok(got["grad"], f"backward through {call}"), want, f"the gradient of {call} for yhat")

    return value, gradient


_mse_value, _mse_gradient = _loss_judges("mse", lambda d: np.mean(d**2))
_mae_value, _mae_gradient = _loss_judges("mae", lambda d: np.mean(np.abs(d)))

_JUDGES = {
    "list2d_mean": {"value": _mean_value, "shapes": _mean_shapes},
    "list2d_abs": {"value": _abs_value, "new_list2d": _abs_new_list2d},
    "matrix_mean": {"gradient": _matrix_mean_gradient, "accumulates": _matrix_mean_accumulates},
    "matrix_abs": {
        "gradient": _matrix_abs_gradient,
        "accumulates": _matrix_abs_accumulates,
        "at_zero": _matrix_abs_at_zero,
    },
    "losses": {
        "mse_value": _mse_value,
        "mse_gradient": _mse_gradient,
        "mae_value": _mae_value,
        "mae_gradient": _mae_gradient,
    },
}
