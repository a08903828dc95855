"""Stage 01-losses judges: List2D.mean/abs, the gradients of Matrix.mean/abs, MSE and MAE.

The probe (probes/losses.py) runs the student's code in the kernel and returns
plain data, including the student's analytic gradients. `judge` recomputes
everything here with numpy, gradients by central differences on the true
function, so nothing the student wrote decides a verdict. Nothing in this
module is ever sent to the kernel.
"""
import numpy as np

from .common import Failed, judge_parts, numerical_gradient, rel_error

QUESTIONS = {
    "list2d_mean": {
        "value": "List2D.mean() must return sum / (nrow * ncol) as a number, on a non-square List2D",
        "shapes": "List2D.mean() must work for any shape (1x1, one row, one column) "
        "and leave the List2D unchanged",
    },
    "list2d_abs": {
        "value": "x.abs() and abs(x) must give |x| of every entry: negatives flipped, positives and zeros kept",
        "new_list2d": "x.abs() and abs(x) must return a new List2D of x's shape holding |x|, and leave x unchanged",
    },
    "matrix_mean": {
        "gradient": "Matrix.mean's _gradient must add result.grad / (nrow * ncol) to every entry "
        "of self.grad (checked with an upstream gradient that is not 1, on a Matrix computed from "
        "another, so the result must keep self as its child and hold the mean)",
        "accumulates": "Matrix.mean's _gradient must add into self.grad (+=), not replace it: "
        "a Matrix whose mean is taken twice gets both shares (the result holding the mean, with self as its child)",
    },
    "matrix_abs": {
        "gradient": "Matrix.abs's _gradient must add sign(x) * result.grad to self.grad "
        "(checked with an upstream gradient that is not 1, on a Matrix computed from another, "
        "so the result must keep self as its child and hold |x|)",
        "accumulates": "Matrix.abs's _gradient must add into self.grad (+=), not replace it: "
        "a Matrix used in two abs() nodes gets both shares (each holding |x|, with self as its child)",
        "at_zero": "Where x is exactly 0, Matrix.abs's gradient may be any value in [-1, 1] "
        "times result.grad, and sign(x) * result.grad everywhere else (the result holding |x|)",
    },
    "losses": {
        "mse_value": "mse(yhat, y) must return a 1x1 Matrix holding the mean of (yhat - y)**2 "
        "and leave yhat and y unchanged",
        "mse_gradient": "mse(yhat, y) must hold the right value and be built from Matrix operations, "
        "so that backward() gives yhat the gradient 2 * (yhat - y) / N, also when yhat is computed from other matrices",
        "mae_value": "mae(yhat, y) must return a 1x1 Matrix holding the mean of |yhat - y| "
        "and leave yhat and y unchanged",
        "mae_gradient": "mae(yhat, y) must hold the right value and be built from Matrix operations, "
        "so that backward() gives yhat the gradient sign(yhat - y) / N, also when yhat is computed from other matrices",
    },
}

# What each question builds on (CONTRACT.md section 2): while it is probed, correct
# stand-ins (standins/<prerequisite>.py) replace the student's answers to these.
PREREQUISITES = {
    "list2d_mean": [],
    "list2d_abs": [],
    "matrix_mean": ["list2d_mean"],
    "matrix_abs": ["list2d_abs"],
    "losses": ["matrix_mean", "matrix_abs"],
}

TOLERANCE = 1e-7  # CS231n: a relative error up to 1e-7 is a correct gradient

# {question: {side-condition part: the value part it needs}} (common.judge_parts).
# The `accumulates` parts are not gated: they compare the student's own
# gradients, so a wrong gradient costs only `gradient`; they check the nodes'
# values themselves, and a gradient that never reaches x fails them on their own.
GATES = {"list2d_abs": {"new_list2d": "value"}}


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
            # d = yhat - y stays at least 0.1 from the kink of |d|. In half the
            # entries y is larger than d and of the other sign, so yhat + y and
            # yhat - y differ in sign there whatever the seed.
            d = np.array(_away_from_zero(rng, (n, 1)))
            against = rng.permutation(np.resize([True, False], n)).reshape(n, 1)
            larger = -np.sign(d) * rng.uniform(2.0, 3.0, size=(n, 1))
            y = np.where(against, larger, rng.uniform(-3.0, 3.0, size=(n, 1)))
            yhat = y + d
            upstream = _away_from_zero(rng, (1, 1), 0.5)
            cases[loss] = {"yhat": yhat.tolist(), "y": y.tolist(), "upstream": upstream}
        return cases
    raise KeyError(f"stage 01-losses has no question {question!r}")


def _uniform(rng, shape):
    return rng.uniform(-3.0, 3.0, size=shape).tolist()


def _away_from_zero(rng, shape, low=0.1):
    """Entries with |x| in [low, 2]: both signs from 2 entries, each sign below and above 1 from 4.

    low = 0.1 keeps inputs of abs far more than 10h (h = 1e-5) from its kink, so
    central differences never straddle it. The mix is fixed, not drawn, so a bug
    that breaks one sign only, or compares with 1 instead of 0, fails whatever
    the seed.
    """
    n = int(np.prod(shape))
    if n == 1:
        return (rng.choice([-1.0, 1.0]) * rng.uniform(low, 2.0, size=shape)).tolist()
    kinds = rng.permutation(np.resize(np.arange(4), n))  # 0, 1: below 1; 2, 3: above; odd: positive
    signs = np.where(kinds % 2, 1.0, -1.0)
    magnitudes = np.where(kinds < 2, rng.uniform(low, 1.0, size=n), rng.uniform(1.0, 2.0, size=n))
    return (signs * magnitudes).reshape(shape).tolist()


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
    """About a third of the entries exactly 0.0, the others as _away_from_zero makes them."""
    n = int(np.prod(shape))
    zeros = rng.choice(n, size=max(1, n // 3), replace=False)
    x = np.zeros(n)
    x[np.setdiff1d(np.arange(n), zeros)] = _away_from_zero(rng, (n - len(zeros),))
    return x.reshape(shape).tolist()


# Judge: pure numpy on the probe's data, no student objects


def judge(question, inputs, data):
    """{part: None if it passed, else a short failure message}."""
    return judge_parts(QUESTIONS[question], data, lambda part: _JUDGES[question][part](inputs, data),
                       GATES.get(question))


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
    if not np.all(np.isfinite(got)):
        raise Failed(f"{what} holds inf or nan")
    return got


def _require_close(got, want, what):
    """Raise Failed unless `got` has `want`'s shape and is within TOLERANCE of it (relative error)."""
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
    _require_close(_ok(data["value"]["mean"], "List2D.mean()"), x.mean(), f"List2D.mean() of a {x.shape} List2D")


def _mean_shapes(inputs, data):
    for rows, case in zip(inputs["shapes"], data["shapes"], strict=True):
        x = np.array(rows)
        what = f"List2D.mean() of a {x.shape} List2D"
        _require_close(_ok(case["mean"], what), x.mean(), what)
        _unchanged(_ok(case["after"], what), rows, what)


def _abs_value(inputs, data):
    x = np.array(inputs["x"])
    for key, what in (("method", "x.abs()"), ("builtin", "abs(x)")):
        case = data[key]
        if "error" in case:
            raise Failed(f"{what} raised {case['error']}")
        _require_close(_ok(case["vals"], what), np.abs(x), what)


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
        _require_close(got["forward"], [[x.mean()]], f"the value of {what}")
        want = numerical_gradient(lambda v: upstream * v.mean(), x)
        _require_close(got["grad"], want, f"the gradient of {what} times {upstream:.3g}")


def _accumulates(got, x, op, what):
    """x's gradient through two op nodes must be the sum of its gradients through each alone.

    Judged against the answer's own single-use gradients, not the truth, so a
    wrong gradient fails only its `gradient` part. But an op that does nothing
    (a copy of x, the gradient passed through) agrees with itself too: the two
    nodes must hold op(x), and some gradient must have reached x.
    """
    _require_close(got["forward"], [op(x), op(x)], f"the values of the two nodes of {what}")
    grad, first, second = (_array(got[key], x.shape, f"the gradient of {what}") for key in ("grad", "first", "second"))
    if not (first.any() and second.any()):
        raise Failed(f"no gradient reached x through {what}")
    _require_close(grad, first + second, f"the gradient of {what} (x used twice) against the sum of each use alone")


def _matrix_mean_accumulates(inputs, data):
    what = "t.mean() * c1 + t.mean() * c2"
    _accumulates(_ok(data["accumulates"], what), np.array(inputs["accumulates"]["x"]), lambda v: [[v.mean()]], what)


def _matrix_abs_gradient(inputs, data):
    for case, got in zip(inputs["gradient"], data["gradient"], strict=True):
        x, upstream = np.array(case["x"]), np.array(case["upstream"])
        what = f"Matrix.abs() of a {x.shape} Matrix"
        got = _ok(got, what)
        _require_close(got["forward"], np.abs(x), f"the value of {what}")
        want = numerical_gradient(lambda v: (np.abs(v) * upstream).sum(), x)
        _require_close(got["grad"], want, f"the gradient of {what} with upstream G")


def _matrix_abs_accumulates(inputs, data):
    what = "(t.abs() * G1).sum() + (abs(t) * G2).sum()"
    _accumulates(_ok(data["accumulates"], what), np.array(inputs["accumulates"]["x"]), np.abs, what)


def _matrix_abs_at_zero(inputs, data):
    case = inputs["at_zero"]
    x, upstream = np.array(case["x"]), np.array(case["upstream"])
    got = _ok(data["at_zero"], "Matrix.abs() of a Matrix with zeros")
    _require_close(got["forward"], np.abs(x), "the value of Matrix.abs() of a Matrix with zeros")
    grad = _array(got["grad"], x.shape, "the gradient of Matrix.abs()")
    zero = x == 0
    # Any subgradient s in [-1, 1] at 0 gives s * G there; the 1e-12 allows rounding in s * G.
    if np.any(np.abs(grad[zero]) > np.abs(upstream[zero]) * (1 + 1e-12)):
        raise Failed("the gradient of Matrix.abs() at 0 is outside [-1, 1] * result.grad")
    want = numerical_gradient(lambda v: (np.abs(v) * upstream).sum(), x)
    _require_close(grad[~zero], want[~zero], "the gradient of Matrix.abs() away from 0")


def _loss_judges(name, loss):
    """The value and gradient judges of one loss, loss(d) being its numpy form of d = yhat - y."""

    def returned(case, got, call):
        """Raise Failed unless the loss is a Matrix holding the right value."""
        if "error" in got:
            raise Failed(f"{call} raised {got['error']}")
        if got["is_matrix"] is not True:
            raise Failed(f"{call} did not return a Matrix")
        yhat, y = np.array(case["yhat"]), np.array(case["y"])
        _require_close(_ok(got["value"], call), [[loss(yhat - y)]], f"the value of {call}")

    def value(inputs, data):
        case, got = inputs[name], data[name]
        call = f"{name}(yhat, y)"
        returned(case, got, call)
        after = _ok(got["inputs_after"], call)
        _unchanged(after[0], case["yhat"], f"{call} (yhat)")
        _unchanged(after[1], case["y"], f"{call} (y)")

    def gradient(inputs, data):
        case, got = inputs[name], data[name]
        call = f"{name}(yhat, y)"
        returned(case, got, call)  # a wrong value (the loss plus a constant) can have the right gradient
        yhat, y, upstream = np.array(case["yhat"]), np.array(case["y"]), case["upstream"][0][0]
        want = numerical_gradient(lambda v: upstream * loss(v - y), yhat)
        _require_close(_ok(got["grad"], f"backward through {call}"), want, f"the gradient of {call} for yhat")

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
