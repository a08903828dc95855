"""Matrix: a node in a compute graph, with reverse-mode automatic differentiation.

Every op has the same shape: build `result` with its children, define
`_gradient` right beside it, attach it, return `result`. A `_gradient` ADDS
this node's share of the gradient into each child's `.grad` (a node used twice
collects from both uses). Closures compute only with `List2D`, never with
`Matrix`, so computing a gradient never builds more graph.
"""

from __future__ import annotations

import math
import random
import reprlib
from numbers import Real

from .list2d import List2D, _is_rows


class Matrix:
    """A List2D of values (`data`) plus its gradient (`grad`) and graph links."""

    __array_ufunc__ = None  # a numpy number on the left defers to our reflected ops

    def __init__(self, data: List2D, children: tuple[Matrix, ...] = ()) -> None:
        if not isinstance(data, List2D):
            raise TypeError(
                f"Matrix needs a List2D, got {type(data).__name__}; "
                "build one from lists with match.mat(rows)"
            )
        self.data = data
        self.grad = List2D(*data.shape)
        self._children = tuple(children)
        self._gradient = lambda: None  # a leaf has no children to pass gradient to

    @property
    def nrow(self) -> int:
        return self.data.nrow

    @property
    def ncol(self) -> int:
        return self.data.ncol

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Matrix({self.data!r})"

    def item(self) -> float:
        """The single value of a 1x1 matrix."""
        if self.shape != (1, 1):
            raise ValueError(f"item() needs a 1x1 Matrix, got shape {self.shape}")
        return self.data.vals[0][0]

    def backward(self) -> None:
        """Gradients of (the sum of) self with respect to every node below it."""
        # Iterative depth-first post-order: the graph of a long training run is
        # far deeper than Python's recursion limit.
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node._children)
        self.grad = List2D(*self.shape, 1.0)
        for node in reversed(order):
            node._gradient()

    # Element-wise operations (operands broadcast as in List2D)

    def __add__(self, rhs: Matrix | List2D | float) -> Matrix:
        """Element-wise addition: self + rhs."""
        rhs = _lift(rhs)
        if rhs is None:
            return NotImplemented
        result = Matrix(self.data + rhs.data, children=(self, rhs))

        def _gradient() -> None:
            self.grad += result.grad.sum_to(self.shape)
            rhs.grad += result.grad.sum_to(rhs.shape)

        result._gradient = _gradient
        return result

    def __mul__(self, rhs: Matrix | List2D | float) -> Matrix:
        """Element-wise multiplication: self * rhs."""
        rhs = _lift(rhs)
        if rhs is None:
            return NotImplemented
        result = Matrix(self.data * rhs.data, children=(self, rhs))

        def _gradient() -> None:
            self.grad += (rhs.data * result.grad).sum_to(self.shape)
            rhs.grad += (self.data * result.grad).sum_to(rhs.shape)

        result._gradient = _gradient
        return result

    def __pow__(self, exponent: float) -> Matrix:
        """Element-wise power by a constant: self ** exponent."""
        if not isinstance(exponent, Real):
            return NotImplemented
        result = Matrix(self.data**exponent, children=(self,))

        def _gradient() -> None:
            self.grad += exponent * self.data ** (exponent - 1) * result.grad

        result._gradient = _gradient
        return result

    def __radd__(self, lhs: List2D | float) -> Matrix:
        """Element-wise addition: lhs + self."""
        return self + lhs

    def __neg__(self) -> Matrix:
        """Element-wise negation: -self."""
        return self * -1.0

    def __sub__(self, rhs: Matrix | List2D | float) -> Matrix:
        """Element-wise subtraction: self - rhs."""
        return self + (-rhs)

    def __rsub__(self, lhs: List2D | float) -> Matrix:
        """Element-wise subtraction: lhs - self."""
        return (-self) + lhs

    def __rmul__(self, lhs: List2D | float) -> Matrix:
        """Element-wise multiplication: lhs * self."""
        return self * lhs

    def __truediv__(self, rhs: Matrix | List2D | float) -> Matrix:
        """Element-wise division: self / rhs."""
        return self * rhs**-1

    def __rtruediv__(self, lhs: List2D | float) -> Matrix:
        """Element-wise division: lhs / self."""
        return self**-1 * lhs

    def relu(self) -> Matrix:
        """Element-wise rectified linear unit: max(self, 0)."""
        result = Matrix(self.data.map(lambda x: max(x, 0.0)), children=(self,))

        def _gradient() -> None:
            self.grad += (self.data > 0) * result.grad

        result._gradient = _gradient
        return result

    def sigmoid(self) -> Matrix:
        """Element-wise logistic sigmoid: 1 / (1 + exp(-self))."""
        result = Matrix(self.data.map(_sigmoid), children=(self,))

        def _gradient() -> None:
            s = result.data
            self.grad += s * (1 - s) * result.grad

        result._gradient = _gradient
        return result

    def abs(self) -> Matrix:
        """Element-wise absolute value: |self|."""
        result = Matrix(self.data.abs(), children=(self,))

        def _gradient() -> None:
            # BEGIN EXERCISE matrix_abs
            self.grad += (self.data > 0) * result.grad
            self.grad += -(self.data < 0) * result.grad
            # END EXERCISE

        result._gradient = _gradient
        return result

    def __abs__(self) -> Matrix:
        """Element-wise absolute value: abs(self)."""
        return self.abs()

    # Reductions

    def sum(self) -> Matrix:
        """Sum of all entries, as a 1x1 matrix."""
        result = Matrix(List2D(1, 1, self.data.sum()), children=(self,))

        def _gradient() -> None:
            self.grad += List2D(self.nrow, self.ncol, result.grad.vals[0][0])

        result._gradient = _gradient
        return result

    def mean(self) -> Matrix:
        """Mean of all entries, as a 1x1 matrix: sum / (nrow * ncol)."""
        result = Matrix(List2D(1, 1, self.data.mean()), children=(self,))

        def _gradient() -> None:
            # BEGIN EXERCISE matrix_mean
            n = self.nrow * self.ncol
            self.grad += List2D(self.nrow, self.ncol, result.grad.vals[0][0] / n)
            # END EXERCISE

        result._gradient = _gradient
        return result

    # Linear algebra

    def __matmul__(self, rhs: Matrix | List2D) -> Matrix:
        """Matrix product: self @ rhs."""
        if not isinstance(rhs, (Matrix, List2D)):
            return NotImplemented
        rhs = _lift(rhs)
        result = Matrix(self.data @ rhs.data, children=(self, rhs))

        def _gradient() -> None:
            self.grad += result.grad @ rhs.data.T
            rhs.grad += self.data.T @ result.grad

        result._gradient = _gradient
        return result

    def __rmatmul__(self, lhs: List2D) -> Matrix:
        """Matrix product: lhs @ self."""
        if not isinstance(lhs, List2D):
            return NotImplemented
        return Matrix(lhs) @ self

    @property
    def T(self) -> Matrix:
        """Transpose: self^T."""
        result = Matrix(self.data.T, children=(self,))

        def _gradient() -> None:
            self.grad += result.grad.T

        result._gradient = _gradient
        return result


def _lift(value: Matrix | List2D | float) -> Matrix | None:
    """`value` as a Matrix: constants become leaves (None if it is no operand)."""
    if isinstance(value, Matrix):
        return value
    if isinstance(value, List2D):
        return Matrix(value)
    if isinstance(value, Real):
        return Matrix(List2D(1, 1, value))
    return None


def _sigmoid(x: float) -> float:
    # Two forms so that exp() never overflows for large |x|.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


# Factories: leaf matrices


def randn(nrow: int, ncol: int) -> Matrix:
    """A leaf of standard normal samples, N(0, 1), drawn from the `random` module."""
    rows = [[random.gauss(0.0, 1.0) for _ in range(ncol)] for _ in range(nrow)]
    return Matrix(List2D(nrow, ncol, rows))


def mat(rows: list[list[float]]) -> Matrix:
    """A leaf from a list of row lists (copied)."""
    if not _is_rows(rows):
        raise TypeError(f"mat() needs a list of row lists like [[1, 2]], got {reprlib.repr(rows)}")
    return Matrix(List2D(len(rows), len(rows[0]) if rows else 0, rows))


def zeros(nrow: int, ncol: int) -> Matrix:
    """A leaf of zeros."""
    return Matrix(List2D(nrow, ncol, 0.0))


def ones(nrow: int, ncol: int) -> Matrix:
    """A leaf of ones."""
    return Matrix(List2D(nrow, ncol, 1.0))
