"""Stand-in for list2d_abs: List2D.abs is element-wise |x| in a new List2D."""


def _abs(self):
    """List2D.abs: element-wise |x|, in a new List2D."""
    return type(self)(self.nrow, self.ncol, [[abs(v) for v in row] for row in self.vals])


def _abs_dunder(self):
    """abs(x), routed to x.abs()."""
    return self.abs()


# A student may have rebound __abs__ as well.
PATCHES = [("List2D", "abs", _abs), ("List2D", "__abs__", _abs_dunder)]
