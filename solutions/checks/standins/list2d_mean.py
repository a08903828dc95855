"""Stand-in for list2d_mean: List2D.mean is sum / (nrow * ncol)."""


def _mean(self):
    """List2D.mean: sum / (nrow * ncol)."""
    return sum(sum(row) for row in self.vals) / (self.nrow * self.ncol)


PATCHES = [("List2D", "mean", _mean)]
