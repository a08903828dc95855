"""Layers built from Matrix ops: a model is a Module, its weights are parameters()."""

from __future__ import annotations

import math
from numbers import Integral

from .list2d import List2D
from .matrix import Matrix, randn


class Module:
    """A piece of a model: `module(x)` runs `forward(x)`."""

    def __call__(self, x: Matrix) -> Matrix:
        return self.forward(x)

    def forward(self, x: Matrix) -> Matrix:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def parameters(self) -> list[Matrix]:
        """The matrices that training updates (none, unless a subclass says so)."""
        return []

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to zeros, in place."""
        for p in self.parameters():
            p.grad.zeros_()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Module):
    """An affine layer: x @ W + b, for x of shape (batch, in_features)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, Integral) or n < 1:
                raise ValueError(f"{name} must be a positive integer, got {n!r}")
        self.in_features, self.out_features = in_features, out_features
        # Scaled by sqrt(1 / in_features) so that x @ W keeps roughly the
        # variance of x, however many inputs are summed.
        self.W = Matrix(randn(in_features, out_features).data * math.sqrt(1 / in_features))
        self.b = Matrix(List2D(1, out_features))

    def forward(self, x: Matrix) -> Matrix:
        return x @ self.W + self.b

    def parameters(self) -> list[Matrix]:
        return [self.W, self.b]

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"


class ReLU(Module):
    """Element-wise max(x, 0)."""

    def forward(self, x: Matrix) -> Matrix:
        return x.relu()


class Sigmoid(Module):
    """Element-wise 1 / (1 + exp(-x))."""

    def forward(self, x: Matrix) -> Matrix:
        return x.sigmoid()


class Sequential(Module):
    """Modules applied in order: the output of each is the input of the next."""

    def __init__(self, *modules: Module) -> None:
        self.modules = list(modules)

    def forward(self, x: Matrix) -> Matrix:
        for module in self.modules:
            x = module(x)
        return x

    def parameters(self) -> list[Matrix]:
        return [p for module in self.modules for p in module.parameters()]

    def __repr__(self) -> str:
        return f"Sequential({', '.join(map(repr, self.modules))})"
