"""Planted bugs and valid alternative answers for stage 03-tradeoffs.

Each entry replaces ONE solution region of solutions/03-tradeoffs/tradeoffs.ipynb:
`function` names the function whose `# BEGIN SOLUTION` region it fills, and
`solution` is what the student types in place of the `...`, written unindented
(indent it to the region's level). Every other region keeps the solution.

`failing` lists the hidden parts of the entry's own question that must fail;
`expected` gives the outcome per question: "full", "partial" or "zero".
"""

QUESTIONS = ["updates_per_epoch", "first_epoch_below"]

# Every region blank, as in the student version: every question scores 0.
BLANK = {
    "solutions": {name: "..." for name in QUESTIONS},
    "expected": {question: "zero" for question in QUESTIONS},
}

ALL_PARTS = {
    "updates_per_epoch": {"sgd", "batch", "divides", "remainder"},
    "first_epoch_below": {"first", "one", "strict", "never"},
}


def _entry(name, question, solution, failing=()):
    """An answer to `question`, typed into the function of the same name."""
    expected = {q: "full" for q in QUESTIONS}
    if failing:
        expected[question] = "zero" if set(failing) == ALL_PARTS[question] else "partial"
    return {
        "name": name,
        "question": question,
        "function": question,
        "solution": solution.strip("\n") + "\n",
        "failing": sorted(failing),
        "expected": expected,
    }


MUTANTS = [
    # updates_per_epoch
    _entry("floor", "updates_per_epoch", """
return num_examples // batch_size
""", {"batch", "remainder"}),
    _entry("true_division", "updates_per_epoch", """
return num_examples / batch_size
""", {"batch", "remainder"}),
    _entry("always_plus_one", "updates_per_epoch", """
return num_examples // batch_size + 1
""", {"batch", "divides", "sgd"}),
    _entry("round", "updates_per_epoch", """
return round(num_examples / batch_size)
""", {"batch", "remainder"}),
    _entry("drops_last_batch", "updates_per_epoch", """
return max(1, num_examples // batch_size)
""", {"remainder"}),
    _entry("swapped_arguments", "updates_per_epoch", """
return math.ceil(batch_size / num_examples)
""", ALL_PARTS["updates_per_epoch"]),
    _entry("loop_stops_early", "updates_per_epoch", """
updates, start = 0, 0
while start + batch_size < num_examples:
    updates += 1
    start += batch_size
return updates
""", ALL_PARTS["updates_per_epoch"]),
    # first_epoch_below
    _entry("zero_based", "first_epoch_below", """
for epoch, loss in enumerate(losses):
    if loss < target:
        return epoch
return None
""", ALL_PARTS["first_epoch_below"]),
    _entry("less_or_equal", "first_epoch_below", """
for epoch, loss in enumerate(losses, start=1):
    if loss <= target:
        return epoch
return None
""", {"never", "strict"}),
    _entry("last_not_first", "first_epoch_below", """
found = None
for epoch, loss in enumerate(losses, start=1):
    if loss < target:
        found = epoch
return found
""", {"first", "one", "strict"}),
    _entry("epoch_of_minimum", "first_epoch_below", """
if losses and min(losses) < target:
    return losses.index(min(losses)) + 1
return None
""", {"first", "one", "strict"}),
    _entry("returns_the_loss", "first_epoch_below", """
for loss in losses:
    if loss < target:
        return loss
return None
""", ALL_PARTS["first_epoch_below"]),
    _entry("zero_for_never", "first_epoch_below", """
for epoch, loss in enumerate(losses, start=1):
    if loss < target:
        return epoch
return 0
""", {"never"}),
    _entry("greater_than", "first_epoch_below", """
for epoch, loss in enumerate(losses, start=1):
    if loss > target:
        return epoch
return None
""", ALL_PARTS["first_epoch_below"]),
    _entry("pops_the_losses", "first_epoch_below", """
epoch = 0
while losses:
    epoch += 1
    if losses.pop(0) < target:
        return epoch
return None
""", ALL_PARTS["first_epoch_below"]),
]

# Answers that do nothing: a constant, the input back, None (or `pass`). Each
# part holds a case a constant gets wrong (docs/authoring.md, "Partial credit").
DO_NOTHING = [
    _entry("constant_one", "updates_per_epoch", """
return 1
""", ALL_PARTS["updates_per_epoch"]),
    _entry("returns_num_examples", "updates_per_epoch", """
return num_examples
""", ALL_PARTS["updates_per_epoch"]),
    _entry("updates_pass", "updates_per_epoch", """
pass
""", ALL_PARTS["updates_per_epoch"]),
    _entry("always_epoch_one", "first_epoch_below", """
return 1
""", ALL_PARTS["first_epoch_below"]),
    _entry("always_none", "first_epoch_below", """
return None
""", ALL_PARTS["first_epoch_below"]),
    _entry("returns_the_losses", "first_epoch_below", """
return losses
""", ALL_PARTS["first_epoch_below"]),
]
MUTANTS += DO_NOTHING

ALTERNATIVES = [
    # updates_per_epoch
    _entry("negative_floor", "updates_per_epoch", """
return -(-num_examples // batch_size)
"""),
    _entry("add_then_floor", "updates_per_epoch", """
return (num_examples + batch_size - 1) // batch_size
"""),
    _entry("counting_loop", "updates_per_epoch", """
updates, start = 0, 0
while start < num_examples:
    updates += 1
    start += batch_size
return updates
"""),
    _entry("range_length", "updates_per_epoch", """
return len(range(0, num_examples, batch_size))
"""),
    _entry("numpy_ceil_float", "updates_per_epoch", """
import numpy as np
return np.ceil(num_examples / batch_size)
"""),
    _entry("floor_plus_bool", "updates_per_epoch", """
return num_examples // batch_size + (num_examples % batch_size > 0)
"""),
    # first_epoch_below
    _entry("next_generator", "first_epoch_below", """
return next((i + 1 for i, loss in enumerate(losses) if loss < target), None)
"""),
    _entry("numpy_flatnonzero", "first_epoch_below", """
import numpy as np
below = np.flatnonzero(np.asarray(losses, dtype=float) < target)
return below[0] + 1 if below.size else None
"""),
    _entry("while_index_implicit_none", "first_epoch_below", """
i = 0
while i < len(losses):
    if losses[i] < target:
        return i + 1
    i += 1
"""),
    _entry("list_index", "first_epoch_below", """
for loss in losses:
    if loss < target:
        return losses.index(loss) + 1
"""),
]
