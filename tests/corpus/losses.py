"""Planted bugs and valid alternative answers for stage 01-losses.

Each entry replaces ONE solution region of solutions/01-losses/losses.ipynb:
`function` names the top-level function whose `# BEGIN SOLUTION` region it
fills (for matrix_mean and matrix_abs that is the body of `_gradient`), and
`solution` is what the student types in place of the `...`, written unindented
(indent it to the region's level). Every other region keeps the solution.

`edits` [(old, new)] changes lines of that function's cell outside the region
too (its forward pass): a student may edit the code the notebook gives.

`failing` lists the hidden parts of the entry's own question that must fail;
`expected` gives the outcome per question: "full", "partial" or "zero".
"""

QUESTIONS = ["list2d_mean", "list2d_abs", "matrix_mean", "matrix_abs", "losses"]

# Every region blank, as in the student version: every question scores 0.
BLANK = {
    "solutions": {name: "..." for name in ["list2d_mean", "list2d_abs", "matrix_mean", "matrix_abs", "mse", "mae"]},
    "expected": {question: "zero" for question in QUESTIONS},
}


def _entry(name, question, function, solution, failing=(), outcome="full", edits=()):
    expected = {q: "full" for q in QUESTIONS}
    expected[question] = outcome
    return {
        "name": name,
        "question": question,
        "function": function,
        "solution": solution.strip("\n") + "\n",
        "edits": {function: list(edits)} if edits else {},
        "failing": sorted(failing),
        "expected": expected,
    }


# The forward lines of matrix_mean and matrix_abs as the notebook gives them, a
# forward that copies self instead, and the solutions of the two regions.
_MEAN_FORWARD = "result = Matrix(List2D(1, 1, self.data.mean()), children=(self,))"
_ABS_FORWARD = "result = Matrix(self.data.abs(), children=(self,))"
_COPY = "result = Matrix(List2D(self.nrow, self.ncol, self.data.vals), children=(self,))"
_MEAN_GRADIENT = """
n = self.nrow * self.ncol
self.grad += List2D(self.nrow, self.ncol, result.grad.vals[0][0] / n)
"""
_ABS_GRADIENT = """
self.grad += (self.data > 0) * result.grad
self.grad += -(self.data < 0) * result.grad
"""

MUTANTS = [
    # list2d_mean
    _entry("mean_divides_by_nrow", "list2d_mean", "list2d_mean", """
return self.sum() / self.nrow
""", {"value", "shapes"}, "zero"),
    _entry("mean_integer_division", "list2d_mean", "list2d_mean", """
return self.sum() // (self.nrow * self.ncol)
""", {"value", "shapes"}, "zero"),
    _entry("mean_of_first_row", "list2d_mean", "list2d_mean", """
return sum(self.vals[0]) / self.ncol
""", {"value", "shapes"}, "zero"),
    _entry("mean_missing_parentheses", "list2d_mean", "list2d_mean", """
return self.sum() / self.nrow * self.ncol
""", {"value", "shapes"}, "zero"),
    _entry("mean_forgets_return", "list2d_mean", "list2d_mean", """
mean = self.sum() / (self.nrow * self.ncol)
""", {"value", "shapes"}, "zero"),
    _entry("mean_loops_nrow_twice", "list2d_mean", "list2d_mean", """
total = 0.0
for i in range(self.nrow):
    for j in range(self.nrow):
        total += self.vals[i][j]
return total / (self.nrow * self.ncol)
""", {"value", "shapes"}, "zero"),
    _entry("mean_divides_in_place", "list2d_mean", "list2d_mean", """
n = self.nrow * self.ncol
self.vals = [[v / n for v in row] for row in self.vals]
return self.sum()
""", {"shapes"}, "partial"),
    # list2d_abs
    _entry("abs_returns_list", "list2d_abs", "list2d_abs", """
return [[abs(v) for v in row] for row in self.vals]
""", {"new_list2d"}, "partial"),
    _entry("abs_mutates_self", "list2d_abs", "list2d_abs", """
for row in self.vals:
    for j in range(len(row)):
        row[j] = abs(row[j])
return self
""", {"new_list2d"}, "partial"),
    _entry("abs_clips_negatives_like_relu", "list2d_abs", "list2d_abs", """
return List2D(self.nrow, self.ncol, [[max(v, 0.0) for v in row] for row in self.vals])
""", {"value", "new_list2d"}, "zero"),  # new_list2d earns points only with the values right
    _entry("abs_swaps_loops", "list2d_abs", "list2d_abs", """
data = [[abs(self.vals[i][j]) for i in range(self.nrow)] for j in range(self.ncol)]
return List2D(*self.shape, data)
""", {"value", "new_list2d"}, "zero"),
    # matrix_mean (the body of _gradient)
    _entry("mean_grad_assigns", "matrix_mean", "matrix_mean", """
n = self.nrow * self.ncol
self.grad = List2D(self.nrow, self.ncol, result.grad.vals[0][0] / n)
""", {"accumulates"}, "partial"),
    _entry("mean_grad_ignores_upstream", "matrix_mean", "matrix_mean", """
n = self.nrow * self.ncol
self.grad += List2D(self.nrow, self.ncol, 1 / n)
""", {"gradient"}, "partial"),
    _entry("mean_grad_not_divided", "matrix_mean", "matrix_mean", """
self.grad += List2D(self.nrow, self.ncol, result.grad.vals[0][0])
""", {"gradient"}, "partial"),
    _entry("mean_grad_divides_by_nrow", "matrix_mean", "matrix_mean", """
self.grad += List2D(self.nrow, self.ncol, result.grad.vals[0][0] / self.nrow)
""", {"gradient"}, "partial"),
    # matrix_abs (the body of _gradient)
    _entry("abs_grad_assigns", "matrix_abs", "matrix_abs", """
self.grad = (self.data > 0) * result.grad - (self.data < 0) * result.grad
""", {"accumulates"}, "partial"),
    _entry("abs_grad_ignores_upstream", "matrix_abs", "matrix_abs", """
self.grad += (self.data > 0) - (self.data < 0)
""", {"gradient", "at_zero"}, "partial"),
    _entry("abs_grad_sign_flipped", "matrix_abs", "matrix_abs", """
self.grad += (self.data < 0) * result.grad
self.grad += -(self.data > 0) * result.grad
""", {"gradient", "at_zero"}, "partial"),
    _entry("abs_grad_positive_branch_only", "matrix_abs", "matrix_abs", """
self.grad += (self.data > 0) * result.grad
""", {"gradient", "at_zero"}, "partial"),
    _entry("abs_grad_divides_by_abs", "matrix_abs", "matrix_abs", """
self.grad += self.data / self.data.abs() * result.grad
""", {"at_zero"}, "partial"),
    # losses
    _entry("mse_missing_square", "losses", "mse", """
return (yhat - y).mean()
""", {"mse_value", "mse_gradient"}, "partial"),
    _entry("mse_sum_not_mean", "losses", "mse", """
return ((yhat - y) ** 2).sum()
""", {"mse_value", "mse_gradient"}, "partial"),
    _entry("mse_forgets_return", "losses", "mse", """
loss = ((yhat - y) ** 2).mean()
""", {"mse_value", "mse_gradient"}, "partial"),
    _entry("mse_returns_float", "losses", "mse", """
return ((yhat - y) ** 2).mean().item()
""", {"mse_value", "mse_gradient"}, "partial"),
    _entry("mse_from_raw_numbers", "losses", "mse", """
d = yhat.data - y.data
return Matrix(List2D(1, 1, (d * d).mean()))
""", {"mse_gradient"}, "partial"),
    _entry("mae_without_abs", "losses", "mae", """
return (yhat - y).mean()
""", {"mae_value", "mae_gradient"}, "partial"),
    _entry("mae_squared", "losses", "mae", """
return ((yhat - y) ** 2).mean()
""", {"mae_value", "mae_gradient"}, "partial"),
    _entry("mae_abs_of_the_mean", "losses", "mae", """
return abs((yhat - y).mean())
""", {"mae_value", "mae_gradient"}, "partial"),
    # A wrong value with the right gradient: the gradient parts need the value too.
    _entry("mae_plus_a_constant", "losses", "mae", """
return (yhat - y).abs().mean() + 1.0
""", {"mae_value", "mae_gradient"}, "partial"),
    _entry("abs_forward_copies_gradient_right", "matrix_abs", "matrix_abs", _ABS_GRADIENT,
           {"gradient", "accumulates", "at_zero"}, "zero", edits=[(_ABS_FORWARD, _COPY)]),
    _entry("mean_forward_sums_gradient_right", "matrix_mean", "matrix_mean", _MEAN_GRADIENT,
           {"gradient", "accumulates"}, "zero",
           edits=[(_MEAN_FORWARD, "result = Matrix(List2D(1, 1, self.data.sum()), children=(self,))")]),
]

# Answers that do nothing: the input back, a copy, None (or `pass`), the
# identity, or a result that backward() cannot go through. A part checking a
# side condition (a new List2D, inputs unchanged) earns nothing without the
# values right, and a gradient part nothing without the value and the graph
# (docs/authoring.md, "Partial credit").
DO_NOTHING = [
    _entry("mean_pass", "list2d_mean", "list2d_mean", """
pass
""", {"value", "shapes"}, "zero"),
    _entry("mean_returns_self", "list2d_mean", "list2d_mean", """
return self
""", {"value", "shapes"}, "zero"),
    _entry("abs_returns_self", "list2d_abs", "list2d_abs", """
return self
""", {"value", "new_list2d"}, "zero"),
    _entry("abs_returns_a_copy", "list2d_abs", "list2d_abs", """
return List2D(self.nrow, self.ncol, [row[:] for row in self.vals])
""", {"value", "new_list2d"}, "zero"),
    _entry("abs_pass", "list2d_abs", "list2d_abs", """
pass
""", {"value", "new_list2d"}, "zero"),
    _entry("mean_grad_pass", "matrix_mean", "matrix_mean", """
pass
""", {"gradient", "accumulates"}, "zero"),
    _entry("mean_grad_keeps_grad", "matrix_mean", "matrix_mean", """
self.grad = self.grad
""", {"gradient", "accumulates"}, "zero"),
    _entry("abs_grad_pass", "matrix_abs", "matrix_abs", """
pass
""", {"gradient", "accumulates", "at_zero"}, "zero"),
    # The identity's gradient, upstream passed through: `accumulates` checks +=
    # against the answer's own gradients (a sign bug costs only `gradient`).
    _entry("abs_grad_identity", "matrix_abs", "matrix_abs", """
self.grad += result.grad
""", {"gradient", "at_zero"}, "partial"),
    # An op that does nothing: its forward copies x and its gradient passes
    # result.grad through. It agrees with itself, so `accumulates` needs the values too.
    _entry("abs_copy_and_pass_through", "matrix_abs", "matrix_abs", """
self.grad += result.grad
""", {"gradient", "accumulates", "at_zero"}, "zero", edits=[(_ABS_FORWARD, _COPY)]),
    _entry("mean_copy_and_pass_through", "matrix_mean", "matrix_mean", """
self.grad += result.grad
""", {"gradient", "accumulates"}, "zero", edits=[(_MEAN_FORWARD, _COPY)]),
    # A result without children: backward() runs its _gradient but goes no
    # further, so in a network no gradient would reach the parameters.
    _entry("mean_drops_its_children", "matrix_mean", "matrix_mean", _MEAN_GRADIENT, {"gradient", "accumulates"},
           "zero", edits=[(_MEAN_FORWARD, "result = Matrix(List2D(1, 1, self.data.mean()))")]),
    _entry("abs_drops_its_children", "matrix_abs", "matrix_abs", _ABS_GRADIENT, {"gradient", "accumulates", "at_zero"},
           "zero", edits=[(_ABS_FORWARD, "result = Matrix(self.data.abs())")]),
    _entry("mse_drops_its_children", "losses", "mse", """
d = yhat.data - y.data
n = yhat.nrow * yhat.ncol
result = Matrix(List2D(1, 1, (d * d).sum() / n))

def _gradient():
    yhat.grad += d * (2 / n) * result.grad.vals[0][0]

result._gradient = _gradient
return result
""", {"mse_gradient"}, "partial"),
    _entry("mse_returns_yhat", "losses", "mse", """
return yhat
""", {"mse_value", "mse_gradient"}, "partial"),
    _entry("mae_pass", "losses", "mae", """
pass
""", {"mae_value", "mae_gradient"}, "partial"),
]
MUTANTS += DO_NOTHING

ALTERNATIVES = [
    _entry("mean_nested_loops", "list2d_mean", "list2d_mean", """
total = 0
for row in self.vals:
    for value in row:
        total += value
return total / (self.nrow * self.ncol)
"""),
    _entry("mean_sum_of_map", "list2d_mean", "list2d_mean", """
return sum(map(sum, self.vals)) / (len(self.vals) * len(self.vals[0]))
"""),
    _entry("abs_conditional_expression", "list2d_abs", "list2d_abs", """
return List2D(self.nrow, self.ncol, [[-v if v < 0 else v for v in row] for row in self.vals])
"""),
    _entry("abs_from_comparisons", "list2d_abs", "list2d_abs", """
return (self > 0) * self - (self < 0) * self
"""),
    _entry("mean_grad_adds_a_number", "matrix_mean", "matrix_mean", """
self.grad += result.grad.vals[0][0] / (self.nrow * self.ncol)
"""),
    _entry("mean_grad_rebinds_sum", "matrix_mean", "matrix_mean", """
n = self.nrow * self.ncol
self.grad = self.grad + List2D(self.nrow, self.ncol, 1.0) * result.grad / n
"""),
    _entry("abs_grad_sign_list2d", "matrix_abs", "matrix_abs", """
sign = [[1.0 if v > 0 else -1.0 if v < 0 else 0.0 for v in row] for row in self.data.vals]
self.grad += List2D(self.nrow, self.ncol, sign) * result.grad
"""),
    _entry("abs_grad_one_at_zero", "matrix_abs", "matrix_abs", """
self.grad += ((self.data >= 0) - (self.data < 0)) * result.grad
"""),
    _entry("abs_grad_zero_at_zero_from_le_ge", "matrix_abs", "matrix_abs", """
self.grad += ((self.data >= 0) - (self.data <= 0)) * result.grad
"""),
    _entry("mse_times_itself", "losses", "mse", """
d = yhat - y
return (d * d).mean()
"""),
    _entry("mse_sum_over_n", "losses", "mse", """
return ((y - yhat) ** 2).sum() / (yhat.nrow * yhat.ncol)
"""),
    _entry("mae_builtin_abs", "losses", "mae", """
return abs(yhat - y).mean()
"""),
    _entry("mae_sum_over_rows", "losses", "mae", """
return (yhat - y).abs().sum() / yhat.nrow
"""),
    _entry("abs_grad_half_at_zero", "matrix_abs", "matrix_abs", """
sign = [[1.0 if v > 0 else -1.0 if v < 0 else 0.5 for v in row] for row in self.data.vals]
self.grad += List2D(self.nrow, self.ncol, sign) * result.grad
"""),
    # A forward written another way: editing the given lines is fine when they stay right.
    _entry("mean_forward_from_the_sum", "matrix_mean", "matrix_mean", _MEAN_GRADIENT, edits=[(
        _MEAN_FORWARD, "result = Matrix(List2D(1, 1, self.data.sum() / (self.nrow * self.ncol)), children=[self])")]),
    _entry("abs_forward_by_map", "matrix_abs", "matrix_abs", _ABS_GRADIENT,
           edits=[(_ABS_FORWARD, "result = Matrix(self.data.map(abs), children=(self,))")]),
]
