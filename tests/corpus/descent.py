"""Planted bugs and valid alternative answers for stage 02-descent.

Each entry replaces ONE solution region of solutions/02-descent/descent.ipynb:
`function` names the function whose `# BEGIN SOLUTION` region it fills, and
`solution` is what the student types in place of the `...`, written unindented
(indent it to the region's level). Every other region keeps the solution.

`failing` lists the hidden parts of the entry's own question that must fail;
`expected` gives the outcome per question: "full", "partial" or "zero".
"""

QUESTIONS = ["prepare", "batch_gd", "sgd", "minibatch_sgd"]

FUNCTIONS = {
    "split_dataset": "prepare",
    "standardize": "prepare",
    "batch_gradient_descent": "batch_gd",
    "stochastic_gradient_descent": "sgd",
    "minibatch_sgd": "minibatch_sgd",
}

ALL_PARTS = {
    "prepare": {"partition", "sizes", "shuffled", "train_stats", "targets", "unchanged"},
    "batch_gd": {"one_batch", "step", "train_losses", "valid_losses", "converges"},
    "sgd": {"one_example", "shuffle", "step", "train_losses", "valid_losses", "converges"},
    "minibatch_sgd": {"batches", "shuffle", "step", "train_losses", "valid_losses", "converges"},
}

# Every region blank, as in the student version: every question scores 0.
BLANK = {
    "solutions": {name: "..." for name in FUNCTIONS},
    "expected": {question: "zero" for question in QUESTIONS},
}


def _entry(name, function, solution, failing=()):
    """An answer typed into `function`'s region; `failing` are its question's parts that fail."""
    question = FUNCTIONS[function]
    expected = {q: "full" for q in QUESTIONS}
    if failing:
        expected[question] = "zero" if set(failing) == ALL_PARTS[question] else "partial"
    return {
        "name": name,
        "question": question,
        "function": function,
        "solution": solution.strip("\n") + "\n",
        "failing": sorted(failing),
        "expected": expected,
    }


# The body every loop shares, for the entries that change only how batches are made.
_UPDATE = """
loss = loss_fn(model(X), y)
model.zero_grad()
loss.backward()
for p in model.parameters():
    p.data = p.data - learning_rate * p.grad
train_losses.append(loss.item())
"""


def _indent(text, levels):
    return "\n".join("    " * levels + line if line else line for line in text.strip("\n").splitlines())


MUTANTS = [
    # prepare: split_dataset
    _entry("split_not_shuffled", "split_dataset", """
indices = list(range(len(dataset)))
parts, start, total = [], 0, 0.0
for fraction in fractions:
    total += fraction
    stop = round(total * len(indices))
    parts.append(Dataset(*dataset[indices[start:stop]]))
    start = stop
return tuple(parts)
""", {"shuffled"}),
    _entry("split_uses_global_random", "split_dataset", """
indices = list(range(len(dataset)))
random.shuffle(indices)
parts, start, total = [], 0, 0.0
for fraction in fractions:
    total += fraction
    stop = round(total * len(indices))
    parts.append(Dataset(*dataset[indices[start:stop]]))
    start = stop
return tuple(parts)
""", {"shuffled"}),
    _entry("split_parts_overlap", "split_dataset", """
indices = list(range(len(dataset)))
rng.shuffle(indices)
parts, total = [], 0.0
for fraction in fractions:
    total += fraction
    parts.append(Dataset(*dataset[indices[:round(total * len(indices))]]))
return tuple(parts)
""", {"partition", "sizes"}),
    _entry("split_truncates_and_loses_rows", "split_dataset", """
indices = list(range(len(dataset)))
rng.shuffle(indices)
parts, start = [], 0
for fraction in fractions:
    stop = start + int(fraction * len(indices))
    parts.append(Dataset(*dataset[indices[start:stop]]))
    start = stop
return tuple(parts)
""", {"partition"}),
    _entry("split_shuffles_x_and_y_apart", "split_dataset", """
n = len(dataset)
x_order, y_order = list(range(n)), list(range(n))
rng.shuffle(x_order)
rng.shuffle(y_order)
parts, start, total = [], 0, 0.0
for fraction in fractions:
    total += fraction
    stop = round(total * n)
    X, _ = dataset[x_order[start:stop]]
    _, y = dataset[y_order[start:stop]]
    parts.append(Dataset(X, y))
    start = stop
return tuple(parts)
""", {"partition"}),
    _entry("split_truncation_piles_up_in_last_part", "split_dataset", """
n = len(dataset)
indices = list(range(n))
rng.shuffle(indices)
sizes = [int(f * n) for f in fractions[:-1]]
sizes.append(n - sum(sizes))
parts, start = [], 0
for size in sizes:
    parts.append(Dataset(*dataset[indices[start:start + size]]))
    start += size
return tuple(parts)
""", {"sizes"}),
    # prepare: standardize
    _entry("standardize_all_data_stats", "standardize", """
rows = [row for dataset in (train, *others) for row in dataset.X.data.vals]
columns = list(zip(*rows))
means = [sum(column) / len(column) for column in columns]
stds = [math.sqrt(sum((x - m) ** 2 for x in column) / len(column)) for column, m in zip(columns, means)]
shift, scale = List2D(1, len(means), [means]), List2D(1, len(stds), [stds])
return tuple(
    Dataset(Matrix((dataset.X.data - shift) / scale), Matrix(dataset.y.data * 1.0))
    for dataset in (train, *others)
)
""", {"train_stats", "targets", "unchanged"}),  # targets and unchanged need train_stats right
    _entry("standardize_each_with_own_stats", "standardize", """
result = []
for dataset in (train, *others):
    columns = dataset.X.data.T.vals
    means = [sum(column) / len(column) for column in columns]
    stds = [math.sqrt(sum((x - m) ** 2 for x in column) / len(column)) for column, m in zip(columns, means)]
    shift, scale = List2D(1, len(means), [means]), List2D(1, len(stds), [stds])
    result.append(Dataset(Matrix((dataset.X.data - shift) / scale), Matrix(dataset.y.data * 1.0)))
return tuple(result)
""", {"train_stats", "targets", "unchanged"}),  # targets and unchanged need train_stats right
    _entry("standardize_mutates_its_inputs", "standardize", """
columns = train.X.data.T.vals
means = [sum(column) / len(column) for column in columns]
stds = [math.sqrt(sum((x - m) ** 2 for x in column) / len(column)) for column, m in zip(columns, means)]
for dataset in (train, *others):
    for row in dataset.X.data.vals:
        for j in range(len(row)):
            row[j] = (row[j] - means[j]) / stds[j]
return tuple(Dataset(dataset.X, dataset.y) for dataset in (train, *others))
""", {"unchanged"}),
    _entry("standardize_scales_y_too", "standardize", """
def scaled(m, reference):
    columns = reference.data.T.vals
    means = [sum(c) / len(c) for c in columns]
    stds = [math.sqrt(sum((x - mu) ** 2 for x in c) / len(c)) for c, mu in zip(columns, means)]
    return Matrix((m.data - List2D(1, len(means), [means])) / List2D(1, len(stds), [stds]))

return tuple(Dataset(scaled(d.X, train.X), scaled(d.y, train.y)) for d in (train, *others))
""", {"targets"}),
    _entry("standardize_only_centers", "standardize", """
columns = train.X.data.T.vals
shift = List2D(1, len(columns), [[sum(column) / len(column) for column in columns]])
return tuple(Dataset(Matrix(d.X.data - shift), Matrix(d.y.data * 1.0)) for d in (train, *others))
""", {"train_stats", "targets", "unchanged"}),  # targets and unchanged need train_stats right
    _entry("standardize_returns_only_the_others", "standardize", """
columns = train.X.data.T.vals
means = [sum(column) / len(column) for column in columns]
stds = [math.sqrt(sum((x - m) ** 2 for x in column) / len(column)) for column, m in zip(columns, means)]
shift, scale = List2D(1, len(means), [means]), List2D(1, len(stds), [stds])
return tuple(Dataset(Matrix((d.X.data - shift) / scale), Matrix(d.y.data * 1.0)) for d in others)
""", {"train_stats", "targets", "unchanged"}),
    # batch_gd
    _entry("bgd_updates_per_example", "batch_gradient_descent", """
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    for i in range(len(train)):
        X, y = train[[i]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"one_batch", "converges"}),
    _entry("bgd_sums_example_gradients", "batch_gradient_descent", """
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    model.zero_grad()
    total = 0.0
    for i in range(len(train)):
        X, y = train[[i]]
        loss = loss_fn(model(X), y)
        loss.backward()
        total += loss.item()
    for p in model.parameters():
        p.data = p.data - learning_rate * p.grad
    train_losses.append(total / len(train))
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"step", "converges"}),
    _entry("bgd_forgets_zero_grad", "batch_gradient_descent", """
X, y = train[list(range(len(train)))]
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    loss = loss_fn(model(X), y)
    loss.backward()
    for p in model.parameters():
        p.data = p.data - learning_rate * p.grad
    train_losses.append(loss.item())
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"step", "converges"}),
    _entry("bgd_adds_the_gradient", "batch_gradient_descent", """
X, y = train[list(range(len(train)))]
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    loss = loss_fn(model(X), y)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data = p.data + learning_rate * p.grad
    train_losses.append(loss.item())
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"step", "converges"}),
    _entry("bgd_records_loss_after_update", "batch_gradient_descent", """
X, y = train[list(range(len(train)))]
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    loss = loss_fn(model(X), y)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data = p.data - learning_rate * p.grad
    train_losses.append(loss_fn(model(X), y).item())
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"train_losses"}),
    _entry("bgd_trains_on_validation", "batch_gradient_descent", """
X, y = train[list(range(len(train)))]
Xv, yv = valid[list(range(len(valid)))]
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    loss = loss_fn(model(X), y)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data = p.data - learning_rate * p.grad
    train_losses.append(loss.item())
    valid_loss = loss_fn(model(Xv), yv)
    model.zero_grad()
    valid_loss.backward()
    for p in model.parameters():
        p.data = p.data - learning_rate * p.grad
    valid_losses.append(valid_loss.item())
return train_losses, valid_losses
""", {"valid_losses"}),
    _entry("bgd_one_epoch_too_many", "batch_gradient_descent", """
X, y = train[list(range(len(train)))]
train_losses, valid_losses = [], []
for _ in range(num_epochs + 1):
    loss = loss_fn(model(X), y)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data = p.data - learning_rate * p.grad
    train_losses.append(loss.item())
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"one_batch", "valid_losses"}),
    _entry("bgd_ignores_learning_rate", "batch_gradient_descent", """
X, y = train[list(range(len(train)))]
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    loss = loss_fn(model(X), y)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data = p.data - 0.01 * p.grad
    train_losses.append(loss.item())
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"step", "converges"}),
    # sgd
    _entry("sgd_never_shuffles", "stochastic_gradient_descent", """
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    for i in range(len(train)):
        X, y = train[[i]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"shuffle"}),
    _entry("sgd_shuffles_once", "stochastic_gradient_descent", """
order = list(range(len(train)))
rng.shuffle(order)
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    for i in order:
        X, y = train[[i]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"shuffle"}),
    _entry("sgd_uses_global_random", "stochastic_gradient_descent", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    random.shuffle(order)
    for i in order:
        X, y = train[[i]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"shuffle"}),
    _entry("sgd_reseeds_its_own_rng", "stochastic_gradient_descent", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    random.Random(0).shuffle(order)
    for i in order:
        X, y = train[[i]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"shuffle"}),
    _entry("sgd_validates_every_update", "stochastic_gradient_descent", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for i in order:
        X, y = train[[i]]
""" + _indent(_UPDATE, 2) + """
        valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"valid_losses"}),
    _entry("sgd_validates_before_the_epoch", "stochastic_gradient_descent", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    valid_losses.append(evaluate(model, loss_fn, valid))
    rng.shuffle(order)
    for i in order:
        X, y = train[[i]]
""" + _indent(_UPDATE, 2) + """
return train_losses, valid_losses
""", {"valid_losses"}),
    _entry("sgd_forgets_zero_grad", "stochastic_gradient_descent", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for i in order:
        X, y = train[[i]]
        loss = loss_fn(model(X), y)
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
        train_losses.append(loss.item())
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"step", "converges"}),
    _entry("sgd_samples_with_replacement", "stochastic_gradient_descent", """
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    for _ in range(len(train)):
        X, y = train[[rng.randrange(len(train))]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"one_example", "shuffle"}),
    _entry("sgd_returns_loss_matrices", "stochastic_gradient_descent", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for i in order:
        X, y = train[[i]]
        loss = loss_fn(model(X), y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
        train_losses.append(loss)
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"train_losses"}),
    # minibatch_sgd
    _entry("mb_drops_the_last_batch", "minibatch_sgd", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for start in range(0, len(order) - batch_size + 1, batch_size):
        X, y = train[order[start:start + batch_size]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"batches", "shuffle"}),
    _entry("mb_sums_instead_of_averaging", "minibatch_sgd", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        X, y = train[batch]
        loss = loss_fn(model(X), y) * len(batch)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
        train_losses.append(loss.item() / len(batch))
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"step", "converges"}),
    _entry("mb_shuffles_once", "minibatch_sgd", """
order = list(range(len(train)))
rng.shuffle(order)
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    for start in range(0, len(order), batch_size):
        X, y = train[order[start:start + batch_size]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"shuffle"}),
    _entry("mb_reorders_fixed_batches", "minibatch_sgd", """
order = list(range(len(train)))
rng.shuffle(order)
batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(batches)
    for batch in batches:
        X, y = train[batch]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"shuffle"}),
    _entry("mb_forgets_zero_grad", "minibatch_sgd", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        X, y = train[order[start:start + batch_size]]
        loss = loss_fn(model(X), y)
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
        train_losses.append(loss.item())
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"step", "converges"}),
    _entry("mb_updates_once_per_epoch", "minibatch_sgd", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    model.zero_grad()
    for start in range(0, len(order), batch_size):
        X, y = train[order[start:start + batch_size]]
        loss = loss_fn(model(X), y)
        loss.backward()
        train_losses.append(loss.item())
    for p in model.parameters():
        p.data = p.data - learning_rate * p.grad
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"batches", "shuffle", "step", "train_losses", "converges"}),
    _entry("mb_one_epoch_too_few", "minibatch_sgd", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(1, num_epochs):
    rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        X, y = train[order[start:start + batch_size]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"batches", "shuffle", "valid_losses"}),
    _entry("mb_ignores_batch_size", "minibatch_sgd", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for start in range(0, len(order), 32):
        X, y = train[order[start:start + 32]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"batches", "shuffle"}),
]


# What a correct loop must not depend on (the hidden runs vary each of these).
VARIED = [
    _entry("mb_hard_codes_mse", "minibatch_sgd", """
def mse_of(X, y):
    return ((model(X) - y) ** 2).mean()

order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        X, y = train[order[start:start + batch_size]]
        loss = mse_of(X, y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
        train_losses.append(loss.item())
    valid_losses.append(mse_of(*valid[list(range(len(valid)))]).item())
return train_losses, valid_losses
""", {"step", "train_losses", "valid_losses"}),
    _entry("sgd_swaps_the_loss_arguments", "stochastic_gradient_descent", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for i in order:
        X, y = train[[i]]
        loss = loss_fn(y, model(X))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
        train_losses.append(loss.item())
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"step", "train_losses"}),
    _entry("mb_hard_codes_batch_size_4", "minibatch_sgd", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for start in range(0, len(order), 4):
        X, y = train[order[start:start + 4]]
""" + _indent(_UPDATE, 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"batches", "shuffle"}),
    _entry("bgd_hard_codes_learning_rate", "batch_gradient_descent", """
X, y = train[list(range(len(train)))]
train_losses, valid_losses = [], []
for _ in range(num_epochs):
""" + _indent(_UPDATE.replace("learning_rate", "0.1"), 1) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", {"step"}),  # 0.1 still converges in the long run, whose rate is 0.6
]
MUTANTS += VARIED

# Answers that do nothing: the inputs back, copies, None (or `pass`), no
# training. A part checking a side condition (y or the inputs unchanged) earns
# nothing without the values right (docs/authoring.md, "Partial credit").
DO_NOTHING = [
    _entry("split_pass", "split_dataset", """
pass
""", {"partition", "sizes", "shuffled"}),
    _entry("split_returns_the_dataset_for_every_part", "split_dataset", """
return tuple(dataset for _ in fractions)
""", {"partition", "sizes", "shuffled"}),
    _entry("standardize_returns_its_inputs", "standardize", """
return (train, *others)
""", {"train_stats", "targets", "unchanged"}),
    _entry("standardize_returns_copies", "standardize", """
return tuple(Dataset(Matrix(d.X.data * 1.0), Matrix(d.y.data * 1.0)) for d in (train, *others))
""", {"train_stats", "targets", "unchanged"}),
    _entry("standardize_pass", "standardize", """
pass
""", {"train_stats", "targets", "unchanged"}),
    _entry("bgd_pass", "batch_gradient_descent", """
pass
""", ALL_PARTS["batch_gd"]),
    _entry("sgd_returns_empty_lists", "stochastic_gradient_descent", """
return [], []
""", ALL_PARTS["sgd"]),
    _entry("mb_only_validates", "minibatch_sgd", """
return [], [evaluate(model, loss_fn, valid) for _ in range(num_epochs)]
""", ALL_PARTS["minibatch_sgd"]),
    _entry("mb_returns_its_datasets", "minibatch_sgd", """
return train, valid
""", ALL_PARTS["minibatch_sgd"]),
    # Loops that never let a gradient reach the model: every forward pass and
    # loss is right, but the parameters never change.
    _entry("bgd_detaches_the_prediction", "batch_gradient_descent", """
X, y = train[list(range(len(train)))]
train_losses, valid_losses = [], []
for _ in range(num_epochs):
""" + _indent(_UPDATE.replace("loss_fn(model(X), y)", "loss_fn(Matrix(model(X).data), y)"), 1) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", ALL_PARTS["batch_gd"]),
    _entry("sgd_forgets_backward", "stochastic_gradient_descent", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for i in order:
        X, y = train[[i]]
""" + _indent(_UPDATE.replace("loss.backward()\n", ""), 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", ALL_PARTS["sgd"]),
    _entry("mb_zero_grad_between_backward_and_step", "minibatch_sgd", """
order = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        X, y = train[order[start:start + batch_size]]
""" + _indent(_UPDATE.replace("model.zero_grad()\nloss.backward()", "loss.backward()\nmodel.zero_grad()"), 2) + """
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
""", ALL_PARTS["minibatch_sgd"]),
]
MUTANTS += DO_NOTHING

ALTERNATIVES = [
    _entry("split_with_sample_and_rounded_sizes", "split_dataset", """
n = len(dataset)
indices = rng.sample(range(n), n)
sizes = [round(f * n) for f in fractions[:-1]]
sizes.append(n - sum(sizes))
parts, start = [], 0
for size in sizes:
    X, y = dataset[indices[start:start + size]]
    parts.append(Dataset(X, y))
    start += size
return tuple(parts)
"""),
    _entry("split_by_random_keys_parts_sorted", "split_dataset", """
keys = [rng.random() for _ in range(len(dataset))]
indices = sorted(range(len(dataset)), key=lambda i: keys[i])
parts = []
cuts = [0]
for f in fractions:
    cuts.append(cuts[-1] + f * len(dataset))
cuts = [round(c) for c in cuts]
for a, b in zip(cuts, cuts[1:]):
    parts.append(Dataset(*dataset[sorted(indices[a:b])]))
return parts
"""),
    _entry("standardize_sample_std_with_loops", "standardize", """
import statistics

columns = list(zip(*train.X.data.vals))
means = [statistics.mean(column) for column in columns]
stds = [statistics.stdev(column) for column in columns]
result = []
for dataset in (train, *others):
    rows = [[(x - m) / s for x, m, s in zip(row, means, stds)] for row in dataset.X.data.vals]
    X = Matrix(List2D(len(rows), len(means), rows))
    y = match.mat([row[:] for row in dataset.y.data.vals])
    result.append(Dataset(X, y))
return tuple(result)
"""),
    _entry("bgd_accumulates_example_gradients", "batch_gradient_descent", """
n = len(train)
train_losses, valid_losses = [], []
for epoch in range(num_epochs):
    model.zero_grad()
    total = 0.0
    for i in range(n):
        X, y = train[[i]]
        loss = loss_fn(model(X), y) * (1 / n)
        loss.backward()
        total += loss.item()
    for p in model.parameters():
        p.data = p.data - learning_rate * p.grad
    train_losses.append(total)
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
"""),
    _entry("bgd_as_one_big_minibatch", "batch_gradient_descent", """
return minibatch_sgd(model, loss_fn, train, valid, learning_rate, num_epochs,
                     batch_size=len(train), rng=random.Random(0))
"""),
    _entry("sgd_as_minibatch_of_one", "stochastic_gradient_descent", """
return minibatch_sgd(model, loss_fn, train, valid, learning_rate=learning_rate,
                     num_epochs=num_epochs, batch_size=1, rng=rng)
"""),
    _entry("sgd_sorted_keys_fresh_grads_in_place", "stochastic_gradient_descent", """
train_losses, valid_losses = [], []
for epoch in range(num_epochs):
    order = sorted(range(len(train)), key=lambda _: rng.random())
    for i in order:
        X, y = train[[i]]
        for p in model.parameters():
            p.grad = List2D(p.nrow, p.ncol, 0.0)
        yhat = model(X)
        loss = loss_fn(yhat, y)
        train_losses.append(loss.item())
        loss.backward()
        for p in model.parameters():
            p.data -= learning_rate * p.grad
    losses = [loss_fn(model(Xi), yi).item() for Xi, yi in (valid[[j]] for j in range(len(valid)))]
    valid_losses.append(sum(losses) / len(losses))
return train_losses, valid_losses
"""),
    _entry("mb_while_loop_sample_chunked_validation", "minibatch_sgd", """
n = len(train)
train_losses, valid_losses = [], []
epoch = 0
while epoch < num_epochs:
    perm = rng.sample(list(range(n)), k=n)
    start = 0
    while start < n:
        X, y = train[perm[start:start + batch_size]]
        loss = loss_fn(model(X), y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
        train_losses.append(float(loss.data.vals[0][0]))
        start += batch_size
    total = 0.0
    for first in range(0, len(valid), 2):
        rows = list(range(first, min(first + 2, len(valid))))
        Xv, yv = valid[rows]
        total += loss_fn(model(Xv), yv).item() * len(rows)
    valid_losses.append(total / len(valid))
    epoch += 1
return train_losses, valid_losses
"""),
    _entry("mb_zero_grad_after_update", "minibatch_sgd", """
indices = list(range(len(train)))
train_losses, valid_losses = [], []
for _ in range(num_epochs):
    rng.shuffle(indices)
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    for batch in batches:
        X, y = train[batch]
        loss = loss_fn(model(X), y)
        train_losses.append(loss.item())
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
        model.zero_grad()
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
"""),
    _entry("mb_also_measures_the_whole_training_set", "minibatch_sgd", """
order = list(range(len(train)))
train_losses, valid_losses, epoch_train_losses = [], [], []
for _ in range(num_epochs):
    rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        X, y = train[order[start:start + batch_size]]
        yhat = model(X)
        train_losses.append(loss_fn(model(X), y).item())  # a second forward, same parameters
        loss = loss_fn(yhat, y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - learning_rate * p.grad
    epoch_train_losses.append(evaluate(model, loss_fn, train))
    valid_losses.append(evaluate(model, loss_fn, valid))
return train_losses, valid_losses
"""),
]
