"""Tests of the reference library `match`, against numpy (float64) and finite differences.

Gradients are checked as in CS231n: central differences with h = 1e-5 and
rel_error = max |a - b| / max(1e-8, |a| + |b|), which must stay <= 1e-7.
"""

import random

import numpy as np
import pytest

import match
from match import List2D, Matrix, mat
from match.data import Dataset
from match.nn import Linear, ReLU, Sequential, Sigmoid

from checks.common import numerical_gradient, rel_error

TOL = 1e-7


def away_from_zero(rng, shape, low=0.1, high=2.0):
    """Values with |x| in [low, high] and random signs, far (>= 10h) from a kink at 0."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def helper_test_op(shapes, match_fn, numpy_fn, min_abs=None):
    """Compare match_fn with numpy_fn: forward values, then every input's gradient.

    Inputs are uniform in [-2, 2], or kept to min_abs <= |x| <= 2 when an op
    has a kink or a pole at 0. The gradient is of (op(x) * G).sum() for a
    random G, so the upstream gradient is not all ones.
    """
    rng = np.random.default_rng(0)
    if min_abs is None:
        xs = [rng.uniform(-2.0, 2.0, shape) for shape in shapes]
    else:
        xs = [away_from_zero(rng, shape, min_abs) for shape in shapes]
    expected = numpy_fn(*xs)
    G = away_from_zero(rng, np.shape(expected), 0.5, 2.0)

    ms = [mat(x.tolist()) for x in xs]
    out = match_fn(*ms)
    assert out.shape == np.shape(expected)
    assert rel_error(out.data.vals, expected) <= TOL

    (out * mat(G.tolist())).sum().backward()
    for i, m in enumerate(ms):

        def f(xi, i=i):
            return float(np.sum(numpy_fn(*xs[:i], xi, *xs[i + 1 :]) * G))

        assert m.grad.shape == m.shape
        assert rel_error(m.grad.vals, numerical_gradient(f, xs[i].copy())) <= TOL


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# Matrix ops: forward against numpy, gradients against central differences


def test_add():
    """Does a + b match numpy, with correct gradients for both operands?"""
    helper_test_op([(3, 4), (3, 4)], lambda a, b: a + b, np.add)


def test_sub():
    """Does a - b match numpy, with correct gradients for both operands?"""
    helper_test_op([(3, 4), (3, 4)], lambda a, b: a - b, np.subtract)


def test_mul():
    """Does a * b match numpy, with correct gradients for both operands?"""
    helper_test_op([(3, 4), (3, 4)], lambda a, b: a * b, np.multiply)


def test_div():
    """Does a / b match numpy, with correct gradients for both operands?"""
    helper_test_op([(3, 4), (3, 4)], lambda a, b: a / b, np.divide, min_abs=0.5)


def test_numbers_on_either_side():
    """Do + - * / work with a plain number on the left and on the right?"""
    helper_test_op([(2, 3)], lambda a: 2.5 + a - 1.5 * a, lambda a: 2.5 + a - 1.5 * a)
    helper_test_op([(2, 3)], lambda a: (3 - a) / 4, lambda a: (3 - a) / 4)
    helper_test_op([(2, 3)], lambda a: 3 / a * 2, lambda a: 3 / a * 2, min_abs=0.5)


def test_pow():
    """Does a ** p match numpy for integer and fractional exponents?"""
    helper_test_op([(3, 4)], lambda a: a**3, lambda a: a**3)
    helper_test_op([(3, 4)], lambda a: abs(a) ** 0.5, lambda a: np.abs(a) ** 0.5, min_abs=0.5)


def test_neg():
    """Does -a match numpy, with gradient -1?"""
    helper_test_op([(3, 4)], lambda a: -a, np.negative)


def test_matmul():
    """Does a @ b match numpy for non-square shapes, with correct gradients?"""
    helper_test_op([(3, 4), (4, 2)], lambda a, b: a @ b, np.matmul)


def test_transpose():
    """Does a.T match numpy, with the gradient transposed back?"""
    helper_test_op([(3, 4)], lambda a: a.T, np.transpose)


def test_sum():
    """Does sum() give a 1x1 matrix whose gradient is the upstream value everywhere?"""
    helper_test_op([(3, 4)], lambda a: a.sum(), lambda a: np.sum(a).reshape(1, 1))


def test_mean():
    """Does mean() give a 1x1 matrix whose gradient is upstream / (nrow * ncol)?"""
    helper_test_op([(3, 4)], lambda a: a.mean(), lambda a: np.mean(a).reshape(1, 1))


def test_abs():
    """Do a.abs() and abs(a) match numpy, with gradient sign(a)?"""
    helper_test_op([(3, 4)], lambda a: a.abs(), np.abs, min_abs=0.1)
    helper_test_op([(3, 4)], abs, np.abs, min_abs=0.1)


def test_abs_gradient_at_zero():
    """Is the gradient of abs at exactly 0 a subgradient, in [-1, 1]?"""
    upstream = [1.0, 2.0, -3.0]
    x = mat([[0.0, 0.0, 0.0]])
    (x.abs() * mat([upstream])).sum().backward()
    assert all(-abs(g) <= v <= abs(g) for v, g in zip(x.grad.vals[0], upstream))


def test_relu():
    """Does relu() match numpy, with gradient 1 where positive and 0 elsewhere?"""
    helper_test_op([(3, 4)], lambda a: a.relu(), lambda a: np.maximum(a, 0), min_abs=0.1)


def test_sigmoid():
    """Does sigmoid() match numpy, with gradient s * (1 - s)?"""
    helper_test_op([(3, 4)], lambda a: a.sigmoid(), sigmoid)


def test_sigmoid_extremes():
    """Does sigmoid() survive large inputs without overflow?"""
    out = mat([[-1000.0, 0.0, 1000.0]]).sigmoid()
    assert out.data.vals == [[0.0, 0.5, 1.0]]


def test_composite():
    """Does a small network-like expression get correct gradients for every input?"""
    helper_test_op(
        [(5, 3), (3, 2), (1, 2)],
        lambda x, w, b: ((x @ w + b).sigmoid() - 0.5) ** 2,
        lambda x, w, b: (sigmoid(x @ w + b) - 0.5) ** 2,
    )


@pytest.mark.parametrize("other", [(3, 4), (1, 4), (3, 1), (1, 1)])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_broadcasting(op, other):
    """Does each op broadcast rows, columns and 1x1, summing gradients back to each shape?"""
    fns = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
    }
    helper_test_op([(3, 4), other], fns[op], fns[op], min_abs=0.5)
    helper_test_op([other, (3, 4)], fns[op], fns[op], min_abs=0.5)


def test_row_times_column():
    """Does a (1, c) row combined with an (r, 1) column broadcast to (r, c), as in numpy?"""
    helper_test_op([(1, 4), (3, 1)], lambda a, b: a * b, np.multiply)


# Graph behaviour


def test_node_reuse_accumulates():
    """Does a node used several times collect the gradient of every use?"""
    x = mat([[1.0, -2.0, 3.0]])
    (x * x + x).sum().backward()
    assert x.grad.vals == [[3.0, -3.0, 7.0]]  # 2x + 1


def test_every_op_accumulates_into_a_reused_node():
    """Does every op add (+=) into a node that already holds gradient from another use?"""
    helper_test_op(
        [(3, 4)],
        lambda a: (
            ((a + a) * a - a) / (a * a + 1) + (a @ a.T) @ a + a.T.T * a + a**2 * a
            + a.abs() * a + a.relu() * a + a.sigmoid() * a + a.sum() * a + a.mean() * a
        ),
        lambda a: (
            ((a + a) * a - a) / (a * a + 1) + (a @ a.T) @ a + a.T.T * a + a**2 * a
            + np.abs(a) * a + np.maximum(a, 0) * a + sigmoid(a) * a + a.sum() * a + a.mean() * a
        ),
        min_abs=0.1,
    )


def test_gradients_accumulate_across_backward_calls():
    """Does a second graph's backward() add to a leaf's gradient rather than overwrite it?"""
    x = mat([[1.0, 2.0]])
    (x * 3).sum().backward()
    (x * 2).sum().backward()
    assert x.grad.vals == [[5.0, 5.0]]  # hence zero_grad() before each step


def test_deep_chain():
    """Does backward() handle a graph far deeper than the recursion limit?"""
    x = mat([[1.0, 2.0]])
    y = x
    for _ in range(3000):
        y = y + 1.0
    y.sum().backward()
    assert y.data.vals == [[3001.0, 3002.0]]
    assert x.grad.vals == [[1.0, 1.0]]


def test_backward_seeds_ones():
    """Does backward() on a non-scalar set its own grad to ones?"""
    x = mat([[1.0, 2.0], [3.0, 4.0]])
    y = x * 2
    y.backward()
    assert y.grad.vals == [[1.0, 1.0], [1.0, 1.0]]
    assert x.grad.vals == [[2.0, 2.0], [2.0, 2.0]]


def test_matrix_attributes():
    """Does a new Matrix have zero grad, its shape, no children and a do-nothing _gradient?"""
    m = Matrix(List2D(2, 3, 1.0))
    assert (m.nrow, m.ncol, m.shape) == (2, 3, (2, 3))
    assert m.grad == List2D(2, 3)
    assert m._children == ()
    assert m._gradient() is None
    y = m + m
    assert y._children == (m, m)


def test_item():
    """Does item() return a float for a 1x1 matrix and name the shape otherwise?"""
    assert mat([[2.5]]).item() == 2.5
    assert isinstance(mat([[2]]).item(), float)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        match.zeros(2, 3).item()


def test_matrix_errors_name_shapes():
    """Do shape errors in Matrix ops name both shapes?"""
    with pytest.raises(ValueError, match=r"cannot broadcast \(2, 3\) with \(3, 2\)"):
        match.zeros(2, 3) + match.zeros(3, 2)
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(2, 3\)"):
        match.zeros(2, 3) @ match.zeros(2, 3)
    with pytest.raises(TypeError):
        Matrix([[1.0]])
    with pytest.raises(TypeError):
        match.zeros(1, 1) + "a"


def test_matrix_ops_do_not_mutate_inputs():
    """Do graph ops and backward() leave the operands' data unchanged?"""
    a, b = mat([[1.0, -2.0]]), mat([[3.0], [4.0]])
    before = (a.data.vals, b.data.vals)
    (abs(a) @ b + a.mean() - a.T.sum() * b.relu().sigmoid().mean() / 2).sum().backward()
    assert (a.data.vals, b.data.vals) == before


def test_mixing_with_list2d():
    """Does a List2D on either side of a Matrix op act as a constant?"""
    x = mat([[1.0, 2.0]])
    c = List2D(1, 2, [[3.0, 4.0]])
    y = c * x + x * c - c
    assert isinstance(y, Matrix)
    y.sum().backward()
    assert x.grad.vals == [[6.0, 8.0]]
    assert isinstance(List2D(2, 1, 1.0) @ x, Matrix)


# Factories and package layout


def test_factories():
    """Do mat, zeros, ones and randn build leaves of the right shape and values?"""
    rows = [[1, 2, 3], [4, 5, 6]]
    m = match.mat(rows)
    rows[0][0] = 99
    assert m.data.vals == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert match.zeros(2, 3).data == List2D(2, 3, 0.0)
    assert match.ones(3, 2).data == List2D(3, 2, 1.0)

    random.seed(7)
    r = match.randn(2, 3)
    random.seed(7)
    assert r.data.vals == [[random.gauss(0, 1) for _ in range(3)] for _ in range(2)]
    assert r._children == ()
    with pytest.raises(TypeError):
        match.mat([1, 2, 3])
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        match.mat([[1, 2], [3]])


def test_package_exports():
    """Does `import match` give the classes, factories and the nn and data modules?"""
    for name in ["List2D", "Matrix", "randn", "mat", "zeros", "ones"]:
        assert hasattr(match, name)
    assert match.nn.Linear is Linear
    assert match.data.Dataset is Dataset


# List2D


def test_list2d_copies_and_converts():
    """Does List2D copy the caller's lists and store floats?"""
    rows = [[1, 2], [3, 4], [5, 6]]
    x = List2D(3, 2, rows)
    rows[0][0] = 99
    rows.append([7, 8])
    assert x.vals == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert all(type(v) is float for row in x.vals for v in row)
    assert (x.nrow, x.ncol, x.shape) == (3, 2, (3, 2))
    assert List2D(2, 2, 3).vals == [[3.0, 3.0], [3.0, 3.0]]
    assert List2D(1, 2).vals == [[0.0, 0.0]]


def test_list2d_constructor_errors():
    """Do bad shapes raise ValueError naming the shapes, and non-numbers TypeError?"""
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        List2D(3, 2, [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"lengths \[2, 1\]"):
        List2D(2, 2, [[1, 2], [3]])
    with pytest.raises(TypeError):
        List2D(1, 2, [[1, "2"]])
    with pytest.raises(TypeError):
        List2D(1, 2, "12")
    with pytest.raises(TypeError):
        List2D(1.5, 2)


def test_list2d_reductions():
    """Do sum() and mean() return floats matching numpy?"""
    a = np.random.default_rng(2).uniform(-2, 2, (3, 5))
    x = List2D(3, 5, a.tolist())
    assert isinstance(x.sum(), float) and isinstance(x.mean(), float)
    assert rel_error(x.sum(), a.sum()) <= TOL
    assert rel_error(x.mean(), a.mean()) <= TOL


def test_list2d_abs():
    """Do abs() and abs(x) give a new List2D of absolute values?"""
    x = List2D(2, 2, [[-1.5, 0.0], [2.0, -0.0]])
    assert x.abs() == List2D(2, 2, [[1.5, 0.0], [2.0, 0.0]])
    assert abs(x) == x.abs()
    assert x.vals == [[-1.5, 0.0], [2.0, -0.0]]


@pytest.mark.parametrize("shape", [(3, 4), (1, 4), (3, 1), (1, 1)])
@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a * b,
        lambda a, b: a / b,
        lambda a, b: b - a,
        lambda a, b: b / a,
        lambda a, b: a > b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
        lambda a, b: a <= b,
    ],
)
def test_list2d_elementwise(op, shape):
    """Does each element-wise List2D op broadcast and match numpy, comparisons giving 1.0/0.0?"""
    rng = np.random.default_rng(3)
    a, b = away_from_zero(rng, (3, 4), 0.5), away_from_zero(rng, shape, 0.5)
    b[0, 0] = a[0, 0]  # exercise the equal case of the comparisons
    x, y = List2D(3, 4, a.tolist()), List2D(*shape, b.tolist())
    result = op(x, y)
    assert isinstance(result, List2D)
    assert rel_error(result.vals, op(a, b).astype(float)) <= TOL
    assert (x.vals, y.vals) == (a.tolist(), b.tolist())


def test_list2d_numbers():
    """Do numbers work on either side of + - * / and in comparisons and **?"""
    a = np.array([[1.0, -2.0, 4.0]])
    x = List2D(1, 3, a.tolist())
    for got, want in [
        (x + 2, a + 2), (2 + x, 2 + a), (x - 2, a - 2), (2 - x, 2 - a),
        (x * 3, a * 3), (3 * x, 3 * a), (x / 4, a / 4), (4 / x, 4 / a),
        (x**2, a**2), (-x, -a), (x > 1, a > 1), (1 > x, 1 > a),
        (x >= -2, a >= -2), (x <= 1, a <= 1),
        (np.float64(2) * x, 2 * a),
    ]:
        assert isinstance(got, List2D)
        assert got.vals == want.astype(float).tolist()


def test_list2d_equality_and_hash():
    """Is == plain structural equality (a bool), and is List2D unhashable?"""
    assert (List2D(1, 2, 1.0) == List2D(1, 2, [[1, 1]])) is True
    assert (List2D(1, 2, 1.0) != List2D(2, 1, 1.0)) is True
    assert (List2D(1, 1) == 0.0) is False
    with pytest.raises(TypeError):
        hash(List2D(1, 1))


def test_list2d_matmul_and_transpose():
    """Do @ and .T match numpy, and does a shape mismatch name both shapes?"""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    x, y = List2D(2, 3, a.tolist()), List2D(3, 4, b.tolist())
    assert rel_error((x @ y).vals, a @ b) <= TOL
    assert x.T.shape == (3, 2) and x.T.vals == a.T.tolist()
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(2, 3\)"):
        x @ x


def test_list2d_broadcast_error():
    """Does an impossible broadcast name both shapes?"""
    with pytest.raises(ValueError, match=r"cannot broadcast \(2, 3\) with \(3, 2\)"):
        List2D(2, 3) + List2D(3, 2)
    with pytest.raises(ValueError, match=r"cannot broadcast \(2, 3\) with \(1, 2\)"):
        List2D(2, 3) > List2D(1, 2)


def test_list2d_sum_to():
    """Does sum_to() undo broadcasting by summing over the stretched dimensions?"""
    a = np.arange(12.0).reshape(3, 4)
    x = List2D(3, 4, a.tolist())
    assert x.sum_to((1, 4)).vals == a.sum(axis=0, keepdims=True).tolist()
    assert x.sum_to((3, 1)).vals == a.sum(axis=1, keepdims=True).tolist()
    assert x.sum_to((1, 1)).vals == [[a.sum()]]
    assert x.sum_to((3, 4)) == x and x.sum_to((3, 4)).vals is not x.vals
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 4\)"):
        x.sum_to((2, 4))


def test_list2d_in_place():
    """Do zeros_() and += change the List2D in place, and does += refuse to change its shape?"""
    x = List2D(2, 2, 1.0)
    alias = x
    x += List2D(1, 2, [[1.0, 2.0]])
    assert alias is x and x.vals == [[2.0, 3.0], [2.0, 3.0]]
    x.zeros_()
    assert alias.vals == [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(1, 2\)"):
        y = List2D(1, 2)
        y += List2D(3, 2)


def test_list2d_map_and_repr():
    """Does map() apply a function element-wise, and does repr() show shape and values?"""
    x = List2D(1, 2, [[1.0, 4.0]])
    assert x.map(lambda v: v * 10).vals == [[10.0, 40.0]]
    assert repr(x) == "List2D(1, 2, [[1.0, 4.0]])"


# nn


def test_linear():
    """Does Linear compute x @ W + b with W (in, out), b (1, out) zeros, and report [W, b]?"""
    layer = Linear(3, 2)
    assert layer.W.shape == (3, 2) and layer.b.data == List2D(1, 2)
    assert layer.parameters() == [layer.W, layer.b]
    assert layer.W._children == ()
    x = np.random.default_rng(5).normal(size=(4, 3))
    out = layer(mat(x.tolist()))
    W, b = np.array(layer.W.data.vals), np.array(layer.b.data.vals)
    assert rel_error(out.data.vals, x @ W + b) <= TOL


def test_linear_gradients():
    """Do Linear's parameters get the gradients finite differences give?"""
    layer = Linear(3, 2)
    rng = np.random.default_rng(6)
    x, G = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    (layer(mat(x.tolist())) * mat(G.tolist())).sum().backward()
    W, b = np.array(layer.W.data.vals), np.array(layer.b.data.vals)
    dW = numerical_gradient(lambda w: np.sum((x @ w + b) * G), W)
    db = numerical_gradient(lambda v: np.sum((x @ W + v) * G), b)
    assert rel_error(layer.W.grad.vals, dW) <= TOL
    assert rel_error(layer.b.grad.vals, db) <= TOL


def test_sequential_and_zero_grad():
    """Does Sequential chain its modules, list their parameters, and zero_grad() in place?"""
    first, second = Linear(3, 4), Linear(4, 1)
    model = Sequential(first, ReLU(), second, Sigmoid())
    assert model.parameters() == first.parameters() + second.parameters()
    assert ReLU().parameters() == [] and Sigmoid().parameters() == []

    x = mat(np.random.default_rng(7).normal(size=(5, 3)).tolist())
    out = model(x)
    expected = second(first(x).relu()).sigmoid()
    assert out.data == expected.data and out.shape == (5, 1)

    out.mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert any(g.sum() != 0.0 for g in grads)
    model.zero_grad()
    assert all(p.grad is g and g == List2D(*p.shape) for p, g in zip(model.parameters(), grads))


def test_module_forward_required():
    """Does a Module without forward() say so when called?"""
    with pytest.raises(NotImplementedError):
        match.nn.Module()(match.zeros(1, 1))


# data


def test_dataset():
    """Does Dataset index rows into new leaf copies, in the order asked for?"""
    X = mat([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = mat([[10.0], [20.0], [30.0]])
    ds = Dataset(X, y)
    assert len(ds) == 3 and ds.X is X and ds.y is y

    Xb, yb = ds[[2, 0]]
    assert Xb.data.vals == [[5.0, 6.0], [1.0, 2.0]] and yb.data.vals == [[30.0], [10.0]]
    assert Xb._children == () and yb._children == ()
    Xb.data.vals[0][0] = -1.0
    assert X.data.vals[2][0] == 5.0

    Xr, _ = ds[range(3)]
    assert Xr.data == X.data and Xr is not X and Xr.data.vals[0] is not X.data.vals[0]
    Xe, ye = ds[[]]
    assert Xe.shape == (0, 2) and ye.shape == (0, 1)


def test_dataset_errors():
    """Does Dataset refuse mismatched row counts (naming the shapes) and a bare integer index?"""
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 1\)"):
        Dataset(match.zeros(3, 2), match.zeros(2, 1))
    ds = Dataset(match.zeros(3, 2), match.zeros(3, 1))
    with pytest.raises(TypeError):
        ds[0]
