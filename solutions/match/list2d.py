"""List2D: a grid of floats kept as a list of row lists.

This is the linear-algebra half of `match`: storage and arithmetic only, with
no idea of gradients (that is `matrix.py`). Element-wise operations broadcast
like numpy's: a dimension of size 1 stretches to match the other operand, so a
(1, c) row, an (r, 1) column or a (1, 1) value combines with an (r, c) grid.
"""

from __future__ import annotations

import math
import reprlib
from numbers import Integral, Real
from typing import Callable


def _broadcast_shape(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """The shape that operands of shapes `a` and `b` both stretch to."""
    if any(m != n and 1 not in (m, n) for m, n in zip(a, b)):
        raise ValueError(f"cannot broadcast {a} with {b}")
    return tuple(n if m == 1 else m for m, n in zip(a, b))


def _as_float(x: object) -> float:
    if not isinstance(x, Real):
        raise TypeError(f"List2D entries must be numbers, got {x!r} ({type(x).__name__})")
    return float(x)


def _is_rows(rows: object) -> bool:
    """Is `rows` a list of row lists (tuples will do)?"""
    sequence = (list, tuple)
    return isinstance(rows, sequence) and all(isinstance(row, sequence) for row in rows)


def _copy_rows(rows: object, shape: tuple[int, int]) -> list[list[float]]:
    """A float copy of `rows`, checked against `shape`.

    Copied so that later edits to the caller's lists cannot reach inside.
    """
    if not _is_rows(rows):
        raise TypeError(f"val must be a number or a list of row lists, got {reprlib.repr(rows)}")
    lengths = [len(row) for row in rows]
    if len(rows) != shape[0] or any(n != shape[1] for n in lengths):
        if len(set(lengths)) <= 1:
            got = str((len(rows), lengths[0] if lengths else 0))
        else:
            got = f"{len(rows)} rows of lengths {lengths}"
        raise ValueError(f"val has shape {got}, expected {shape}")
    return [[_as_float(x) for x in row] for row in rows]


class List2D:
    """An nrow x ncol grid of floats: `vals[i][j]` is row i, column j."""

    __hash__ = None  # `==` compares contents, and the contents can change
    __array_ufunc__ = None  # a numpy number on the left defers to our reflected ops

    def __init__(self, nrow: int, ncol: int, val: float | list[list[float]] = 0.0) -> None:
        if not isinstance(nrow, Integral) or not isinstance(ncol, Integral):
            raise TypeError(f"nrow and ncol must be integers, got {nrow!r} and {ncol!r}")
        if nrow < 0 or ncol < 0:
            raise ValueError(f"shape cannot be negative, got ({nrow}, {ncol})")
        self.nrow, self.ncol = int(nrow), int(ncol)
        if isinstance(val, Real):
            self.vals = [[float(val)] * self.ncol for _ in range(self.nrow)]
        else:
            self.vals = _copy_rows(val, self.shape)

    @classmethod
    def _wrap(cls, shape: tuple[int, int], vals: list[list[float]]) -> List2D:
        """A List2D around fresh rows of floats built in this module.

        Skips the checks and the copy, which would only repeat work on rows
        that no caller can reach.
        """
        result = cls.__new__(cls)
        result.nrow, result.ncol = shape
        result.vals = vals
        return result

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nrow, self.ncol)

    def __repr__(self) -> str:
        return f"List2D({self.nrow}, {self.ncol}, {self.vals})"

    def __eq__(self, rhs: object) -> bool:
        """Same shape and same entries (a bool, unlike `<` and `>`)."""
        if not isinstance(rhs, List2D):
            return NotImplemented
        return self.shape == rhs.shape and self.vals == rhs.vals

    # Reductions

    def sum(self) -> float:
        """Sum of all entries."""
        return sum((sum(row, 0.0) for row in self.vals), 0.0)

    def mean(self) -> float:
        """Mean of all entries: sum / (nrow * ncol)."""
        # BEGIN EXERCISE list2d_mean
        return self.sum() / (self.nrow * self.ncol)
        # END EXERCISE

    def sum_to(self, shape: tuple[int, int]) -> List2D:
        """Sum over the dimensions that broadcasting stretched, giving `shape`.

        The gradient of a broadcast operand is the upstream gradient summed
        over every copy of it that broadcasting made.
        """
        nrow, ncol = shape
        if _broadcast_shape(self.shape, tuple(shape)) != self.shape:
            raise ValueError(f"cannot sum {self.shape} down to {tuple(shape)}")
        rows = [row[:] for row in self.vals]
        if nrow != self.nrow:
            rows = [[sum((row[j] for row in rows), 0.0) for j in range(self.ncol)]]
        if ncol != self.ncol:
            rows = [[sum(row, 0.0)] for row in rows]
        return List2D._wrap((nrow, ncol), rows)

    # Element-wise operations

    def map(self, fn: Callable[[float], float]) -> List2D:
        """Element-wise fn(self)."""
        return List2D._wrap(self.shape, [[fn(x) for x in row] for row in self.vals])

    def abs(self) -> List2D:
        """Element-wise absolute value: |self|."""
        # BEGIN EXERCISE list2d_abs
        data = [[abs(self.vals[i][j]) for j in range(self.ncol)] for i in range(self.nrow)]
        return List2D(*self.shape, data)
        # END EXERCISE

    def __abs__(self) -> List2D:
        """Element-wise absolute value: abs(self)."""
        return self.abs()

    def _zip(self, rhs: float | List2D, fn: Callable[[float, float], float]) -> List2D:
        """Element-wise fn(self, rhs), broadcasting rhs (a number or a List2D)."""
        if isinstance(rhs, Real):
            rhs = float(rhs)
            return self.map(lambda x: fn(x, rhs))
        if not isinstance(rhs, List2D):
            return NotImplemented  # let the other operand (say a Matrix) try
        shape = _broadcast_shape(self.shape, rhs.shape)
        rows = [
            [fn(x, y) for x, y in zip(row, rhs_row)]
            for row, rhs_row in zip(self._stretch(shape), rhs._stretch(shape))
        ]
        return List2D._wrap(shape, rows)

    def _stretch(self, shape: tuple[int, int]) -> list[list[float]]:
        """Rows broadcast to `shape`; they may share row lists, so read only."""
        rows = self.vals if self.ncol == shape[1] else [row * shape[1] for row in self.vals]
        return rows if self.nrow == shape[0] else rows * shape[0]

    def __add__(self, rhs: float | List2D) -> List2D:
        """Element-wise addition: self + rhs."""
        return self._zip(rhs, lambda x, y: x + y)

    def __radd__(self, lhs: float) -> List2D:
        """Element-wise addition: lhs + self."""
        return self._zip(lhs, lambda x, y: y + x)

    def __iadd__(self, rhs: float | List2D) -> List2D:
        """In-place element-wise addition: self += rhs, keeping self's shape.

        Gradients accumulate with `+=`; a gradient that silently grew to a
        broadcast shape would be a bug, so it is an error instead.
        """
        total = self + rhs
        if total is NotImplemented:
            return NotImplemented
        if total.shape != self.shape:
            raise ValueError(f"cannot add {total.shape} into {self.shape} in place")
        self.vals = total.vals
        return self

    def __sub__(self, rhs: float | List2D) -> List2D:
        """Element-wise subtraction: self - rhs."""
        return self._zip(rhs, lambda x, y: x - y)

    def __rsub__(self, lhs: float) -> List2D:
        """Element-wise subtraction: lhs - self."""
        return self._zip(lhs, lambda x, y: y - x)

    def __mul__(self, rhs: float | List2D) -> List2D:
        """Element-wise multiplication: self * rhs."""
        return self._zip(rhs, lambda x, y: x * y)

    def __rmul__(self, lhs: float) -> List2D:
        """Element-wise multiplication: lhs * self."""
        return self._zip(lhs, lambda x, y: y * x)

    def __truediv__(self, rhs: float | List2D) -> List2D:
        """Element-wise division: self / rhs."""
        return self._zip(rhs, lambda x, y: x / y)

    def __rtruediv__(self, lhs: float) -> List2D:
        """Element-wise division: lhs / self."""
        return self._zip(lhs, lambda x, y: y / x)

    def __pow__(self, exponent: float) -> List2D:
        """Element-wise power: self ** exponent."""
        if not isinstance(exponent, Real):
            return NotImplemented
        # math.pow raises on a negative base with a fractional exponent,
        # where `**` would quietly return a complex number.
        return self.map(lambda x: math.pow(x, exponent))

    def __neg__(self) -> List2D:
        """Element-wise negation: -self."""
        return self.map(lambda x: -x)

    def __gt__(self, rhs: float | List2D) -> List2D:
        """Element-wise self > rhs, as 1.0 (true) or 0.0 (false)."""
        return self._zip(rhs, lambda x, y: float(x > y))

    def __lt__(self, rhs: float | List2D) -> List2D:
        """Element-wise self < rhs, as 1.0 (true) or 0.0 (false)."""
        return self._zip(rhs, lambda x, y: float(x < y))

    def __ge__(self, rhs: float | List2D) -> List2D:
        """Element-wise self >= rhs, as 1.0 (true) or 0.0 (false)."""
        return self._zip(rhs, lambda x, y: float(x >= y))

    def __le__(self, rhs: float | List2D) -> List2D:
        """Element-wise self <= rhs, as 1.0 (true) or 0.0 (false)."""
        return self._zip(rhs, lambda x, y: float(x <= y))

    def zeros_(self) -> List2D:
        """Set every entry to 0.0 in place."""
        self.vals = [[0.0] * self.ncol for _ in range(self.nrow)]
        return self

    # Linear algebra

    @property
    def T(self) -> List2D:
        """Transpose: self^T."""
        rows = [[row[j] for row in self.vals] for j in range(self.ncol)]
        return List2D._wrap((self.ncol, self.nrow), rows)

    def __matmul__(self, rhs: List2D) -> List2D:
        """Matrix product: self @ rhs."""
        if not isinstance(rhs, List2D):
            return NotImplemented
        if self.ncol != rhs.nrow:
            raise ValueError(
                f"cannot multiply {self.shape} @ {rhs.shape}: "
                f"inner dimensions {self.ncol} and {rhs.nrow} differ"
            )
        cols = rhs.T.vals
        rows = [
            [sum((x * y for x, y in zip(row, col)), 0.0) for col in cols] for row in self.vals
        ]
        return List2D._wrap((self.nrow, rhs.ncol), rows)
