"""Dataset: examples X paired row by row with targets y."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral

from .list2d import List2D
from .matrix import Matrix


class Dataset:
    """Row i of `X` is one example's inputs and row i of `y` its targets."""

    def __init__(self, X: Matrix, y: Matrix) -> None:
        if not isinstance(X, Matrix) or not isinstance(y, Matrix):
            raise TypeError(
                f"Dataset needs two Matrix objects, got {type(X).__name__} and {type(y).__name__}"
            )
        if X.nrow != y.nrow:
            raise ValueError(
                f"X and y need the same number of rows, got X {X.shape} and y {y.shape}"
            )
        self.X, self.y = X, y

    def __len__(self) -> int:
        return self.X.nrow

    def __getitem__(self, indices: Iterable[int]) -> tuple[Matrix, Matrix]:
        """The rows at `indices`, as new leaf matrices (X_rows, y_rows)."""
        if isinstance(indices, Integral):
            raise TypeError(f"index a Dataset with a list of row indices, e.g. ds[[{indices}]]")
        if isinstance(indices, slice):
            indices = range(*indices.indices(len(self)))
        indices = list(indices)
        # Copies (List2D copies the rows it is given), so that training on a
        # batch can never change the dataset it came from.
        return _rows(self.X, indices), _rows(self.y, indices)

    def __repr__(self) -> str:
        return f"Dataset(X {self.X.shape}, y {self.y.shape})"


def _rows(m: Matrix, indices: list[int]) -> Matrix:
    return Matrix(List2D(len(indices), m.ncol, [m.data.vals[i] for i in indices]))
