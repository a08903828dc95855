"""match: a tiny teaching library for automatic differentiation, in pure Python.

`List2D` does the linear algebra; `Matrix` builds the compute graph and runs
backpropagation; `nn` has layers and `data` a Dataset.
"""

from . import data, nn
from .list2d import List2D
from .matrix import Matrix, mat, ones, randn, zeros

__all__ = ["List2D", "Matrix", "data", "mat", "nn", "ones", "randn", "zeros"]
