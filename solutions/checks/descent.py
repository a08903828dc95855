"""Stage 02-descent judges: split_dataset and standardize, and the three descent loops.

The loops are probed (probes/descent.py) with a recording model: a linear layer
that logs, at every forward pass, which training or validation rows it saw and
the values of its parameters. The judge rebuilds from that log what the loop did (the
parameters change only in an update, so an update is whatever happened
between two forward passes with different parameters), then replays every
update with numpy. Only properties are checked, never one random stream, so
any correct way of shuffling and batching passes. Nothing in this module is
ever sent to the kernel.
"""
import numpy as np

from .common import Failed, judge_parts, rel_error
from .probes.descent import FUNCTIONS, standardize_calls


QUESTIONS = {
    "prepare": {
        "partition": "split_dataset must return one Dataset per fraction that together hold every "
        "example exactly once, with each X row still paired with its own y row",
        "sizes": "each part of split_dataset must hold within 1 of fraction * N examples",
        "shuffled": "split_dataset must shuffle with the rng it is given: the same seed gives the "
        "same split, another seed another split, and the global random module plays no part",
        "train_stats": "standardize must shift and scale every X column by the mean and standard "
        "deviation of the TRAINING X column only, for train and every other Dataset given",
        "targets": "standardize must leave every y unchanged",
        "unchanged": "standardize must return new Datasets and leave the Datasets it was given unchanged",
    },
}
_LOOP_PARTS = {
    "step": "each update must be p.data = p.data - learning_rate * p.grad for every parameter, where "
    "p.grad is the gradient of loss_fn's mean loss on that batch alone (zero the gradients first)",
    "train_losses": "train_losses must hold one float per update: the batch's loss BEFORE its update, in order",
    "valid_losses": "valid_losses must hold one float per epoch: after the epoch's updates, the mean "
    "loss on all of valid, computed without changing any parameter",
    "converges": "a longer run with a sensible learning rate must bring the validation loss down "
    "about as far as the reference loop does",
}
_SHUFFLE = (
    "reshuffle with the rng argument at the start of every epoch: the same seed gives the same run, "
    "every epoch a new order, and the global random module plays no part"
)
QUESTIONS["batch_gd"] = {
    "one_batch": "every epoch makes exactly one update, on all N training examples at once, "
    "for num_epochs epochs",
    **_LOOP_PARTS,
}
QUESTIONS["sgd"] = {
    "one_example": "every epoch makes N updates on one example each, using every training example "
    "exactly once, for num_epochs epochs",
    "shuffle": _SHUFFLE,
    **_LOOP_PARTS,
}
QUESTIONS["minibatch_sgd"] = {
    "batches": "every epoch uses every training example exactly once, in ceil(N / batch_size) batches: "
    "all of batch_size except the last, which keeps the rest; for num_epochs epochs",
    "shuffle": _SHUFFLE + " (so the batches hold other examples every epoch)",
    **_LOOP_PARTS,
}

# The three loops build on none of each other (CONTRACT.md section 2): no stand-ins.
PREREQUISITES = {question: [] for question in QUESTIONS}
TOLERANCE = 1e-7  # float64 replays of the same arithmetic agree far closer than this

# {question: {side-condition part: the value part it needs}} (common.judge_parts):
# standardize's inputs back, or copies of them, keep y and the inputs unchanged
# but earn nothing for it.
GATES = {"prepare": {"targets": "train_stats", "unchanged": "train_stats"}}

# The runs whose every update is rebuilt and replayed. They differ in all that
# a correct loop must not depend on: the loss function, the learning rate, the
# number of features and examples, the batch size and the number of epochs.
REPLAYED = ("main", "alt")
MSE = {"scale": 1.0, "shift": 0.0}


# Inputs: chosen by the grader, plain JSON


def make_inputs(question, seed):
    """JSON inputs for `question`, drawn from numpy's default_rng seeded with `seed`."""
    rng = np.random.default_rng([seed, list(QUESTIONS).index(question)])
    if question == "prepare":
        return _prepare_inputs(rng)
    if question not in FUNCTIONS:
        raise KeyError(f"stage 02-descent has no question {question!r}")
    # N is never a multiple of a batch size, so the last batch is a partial one.
    n, batch_size = int(rng.choice([13, 14])), int(rng.choice([4, 5]))
    n_alt, batch_alt = int(rng.choice([10, 11])), int(rng.choice([3, 6]))
    seeds = [int(s) for s in rng.choice(10**6, size=5, replace=False)]
    small, alt = _regression(rng, n, 5), _regression(rng, n_alt, 4, d=3)
    # Unusual values, passed by keyword, so a loop must use the ones it is given.
    lr, lr_alt, scale, shift = (float(np.round(rng.uniform(low, high), 4))
                                for low, high in ((0.06, 0.14), (0.15, 0.25), (0.3, 0.7), (0.2, 0.5)))
    # The alt run's loss is not MSE, and swapping yhat and y changes it.
    skewed = {"scale": scale, "shift": shift * float(rng.choice([-1.0, 1.0]))}
    main = {"data": "small", "learning_rate": lr, "batch_size": batch_size, "loss": MSE}
    runs = [
        {"name": "main", "seed": seeds[0], "global_seed": seeds[2], "num_epochs": int(rng.choice([3, 4])), **main},
        {"name": "alt", "data": "alt", "seed": seeds[4], "global_seed": seeds[3],
         "num_epochs": int(rng.choice([2, 3])), "learning_rate": lr_alt, "batch_size": batch_alt, "loss": skewed},
    ]
    if question != "batch_gd":
        # Two epochs are enough to compare the order of the examples with the main run's.
        runs += [
            {"name": "same_seed", "seed": seeds[0], "global_seed": seeds[3], "num_epochs": 2, **main},
            {"name": "other_seed", "seed": seeds[1], "global_seed": seeds[2], "num_epochs": 2, **main},
        ]
    # The long run checks convergence. Its training inputs are whitened, so the
    # loss's curvature is 2I: batch GD with learning rate 0.6 shrinks the error
    # 5-fold every update, and a loop that updates with anything but the fresh
    # mean gradient ends far from the reference (see _converge_threshold).
    n_long, lr_long, epochs_long, batch_long = {
        "batch_gd": (40, 0.6, 10, 40), "sgd": (24, 0.03, 6, 1), "minibatch_sgd": (40, 0.25, 12, 8),
    }[question]
    runs.append({"name": "long", "data": "long", "seed": seeds[1], "global_seed": seeds[3],
                 "learning_rate": lr_long, "num_epochs": epochs_long, "batch_size": batch_long, "loss": MSE})
    return {"small": small, "alt": alt, "long": _regression(rng, n_long, 20, whiten=True), "runs": runs}


def _regression(rng, n_train, n_valid, d=2, whiten=False):
    """A noisy linear problem and a poor starting point: {"train", "valid", "init"}.

    Whitened training inputs have column means 0 and covariance I exactly.
    """
    w, b = rng.uniform(1.0, 2.0, size=(d, 1)) * rng.choice([-1, 1], size=(d, 1)), rng.uniform(-1, 1)

    def part(n, whiten=False):
        X = rng.normal(size=(n, d))
        if whiten:
            X -= X.mean(axis=0)
            X = X @ np.linalg.inv(np.linalg.cholesky(X.T @ X / n)).T
        y = X @ w + b + 0.1 * rng.normal(size=(n, 1))
        return {"X": X.tolist(), "y": y.tolist()}

    init = {"W": rng.uniform(-0.3, 0.3, size=(d, 1)).tolist(), "b": [[float(rng.uniform(-0.3, 0.3))]]}
    return {"train": part(n_train, whiten), "valid": part(n_valid), "init": init}


def _prepare_inputs(rng):
    # N prime, so no fraction times N is whole; and in each pair truncating the
    # first two parts leaves the last one more than 1 too big, so int(f * N)
    # with the rest in the last part fails `sizes` whatever the seed. The first
    # part's f * N rounds up in `three` and down in `two`, so a part one row
    # short or long fails `sizes` whatever the seed too.
    n, three = [(37, [0.7, 0.15, 0.15]), (43, [0.6, 0.2, 0.2]), (43, [0.5, 0.25, 0.25]),
                (47, [0.8, 0.1, 0.1]), (53, [0.6, 0.2, 0.2])][int(rng.integers(5))]
    twos = {37: [[0.6, 0.4], [0.65, 0.35]], 43: [[0.8, 0.2], [0.7, 0.3]], 47: [[0.75, 0.25], [0.6, 0.4]],
            53: [[0.8, 0.2], [0.7, 0.3]]}
    two = twos[n][int(rng.integers(2))]
    s = [int(v) for v in rng.choice(10**6, size=5, replace=False)]
    split = {
        "X": rng.normal(size=(n, 2)).tolist(),
        "y": rng.normal(size=(n, 1)).tolist(),
        # Cases 0 and 1 differ only in the global random state, 0 and 2 only in the seed.
        "cases": [
            {"fractions": three, "seed": s[0], "global_seed": s[3]},
            {"fractions": three, "seed": s[0], "global_seed": s[4]},
            {"fractions": three, "seed": s[1], "global_seed": s[3]},
            {"fractions": two, "seed": s[2], "global_seed": s[3]},
        ],
    }
    # Columns on very different scales; valid and test lie elsewhere, so
    # statistics taken from all the data (or from each set) are clearly wrong.
    center, spread = rng.uniform(-5, 5, size=3), rng.uniform(0.5, 4, size=3)

    def part(n, shift, columns=3):
        X = center[:columns] + shift * spread[:columns] + spread[:columns] * rng.normal(size=(n, columns))
        return {"X": X.tolist(), "y": rng.normal(size=(n, 1)).tolist()}

    # `alone` is standardized on its own: another number of rows and columns.
    standardize = {"train": part(20, 0.0), "others": [part(8, 1.5), part(6, -2.0)], "alone": part(12, 0.5, 2)}
    return {"split": split, "standardize": standardize}


# Judge: pure numpy on the probe's data, no student objects


def judge(question, inputs, data):
    """{part: None if it passed, else a short failure message}."""
    def one(part):
        if question == "prepare":
            _PREPARE[part](inputs, data)
        else:
            _judge_loop(question, part, inputs, data)

    return judge_parts(QUESTIONS[question], data, one, GATES.get(question))


# prepare


def _split_parts(inputs, data, i):
    """The id lists of split case i, after checking the probe got Datasets back."""
    got = data["split"][i]
    if isinstance(got, str):
        raise Failed(f"split_dataset raised {got}")
    fractions = inputs["split"]["cases"][i]["fractions"]
    if len(got) != len(fractions):
        raise Failed(f"split_dataset gave {len(got)} parts for fractions {fractions}")
    return [x_ids for x_ids, _ in got]


def _judge_partition(inputs, data):
    n = len(inputs["split"]["X"])
    for i, case in enumerate(data["split"]):
        _split_parts(inputs, data, i)
        for x_ids, y_ids in case:
            if -1 in x_ids or x_ids != y_ids:
                raise Failed("a part holds X rows or y rows that do not belong together")
        every = sorted(j for x_ids, _ in case for j in x_ids)
        if every != list(range(n)):
            raise Failed(f"the parts hold {len(every)} rows ({len(set(every))} distinct) of {n}")


def _judge_sizes(inputs, data):
    n = len(inputs["split"]["X"])
    for i, case in enumerate(inputs["split"]["cases"]):
        sizes = [len(part) for part in _split_parts(inputs, data, i)]
        if any(abs(size - f * n) > 1 + 1e-9 for size, f in zip(sizes, case["fractions"])):
            raise Failed(f"sizes {sizes} for fractions {case['fractions']} of {n}")


def _judge_shuffled(inputs, data):
    first, same_seed, other_seed = (_split_parts(inputs, data, i) for i in range(3))
    if first != same_seed:
        raise Failed("the same rng seed gave another split once the global random state changed")
    # Compared as sets: any order inside a part is fine, the assignment must be random.
    def assignment(parts):
        return [sorted(part) for part in parts]

    if assignment(first) == assignment(other_seed):
        raise Failed("two rng seeds gave the same split")
    for parts in (first, _split_parts(inputs, data, 3)):
        if sorted(parts[0]) == list(range(len(parts[0]))):
            raise Failed("the first part is the first rows of the dataset: not shuffled")


def _standardized(inputs, data, name):
    """The student's outputs for call `name`, and the inputs (from make_inputs) they came from."""
    got = data["standardize"][name]
    if isinstance(got, str):
        raise Failed(f"standardize raised {got}")
    given = standardize_calls(inputs["standardize"])[name]
    if len(got) != len(given):
        raise Failed(f"standardize gave {len(got)} Datasets for {len(given)}")
    return got, given


def _judge_train_stats(inputs, data):
    for name in ("all", "train_only"):
        got, given = _standardized(inputs, data, name)
        train = np.array(given[0]["X"])
        for ddof in (0, 1):
            mean, std = train.mean(axis=0), train.std(axis=0, ddof=ddof)
            if all(_close(out["X"], (np.array(part["X"]) - mean) / std) for out, part in zip(got, given)):
                break
        else:
            raise Failed(f"standardize({', '.join(['train', 'valid', 'test'][:len(given)])}) "
                         "did not use the training mean and standard deviation")


def _judge_targets(inputs, data):
    for name in ("all", "train_only"):
        got, given = _standardized(inputs, data, name)
        if not all(_close(out["y"], part["y"]) for out, part in zip(got, given)):
            raise Failed("standardize changed y")


def _judge_unchanged(inputs, data):
    _, given = _standardized(inputs, data, "all")
    if isinstance(data["standardize"]["inputs_after"], str):
        raise Failed(f"the Datasets given to standardize became unreadable: {data['standardize']['inputs_after']}")
    for after, part in zip(data["standardize"]["inputs_after"], given):
        if not after["same_objects"] or after["X"] != part["X"] or after["y"] != part["y"]:
            raise Failed("standardize changed a Dataset it was given")


def _close(got, want):
    """Same shape and within TOLERANCE; None (inf or nan) never is."""
    try:
        got = np.array(got, dtype=float)
    except (TypeError, ValueError):
        return False
    want = np.asarray(want, dtype=float)
    return got.shape == want.shape and bool(np.all(np.isfinite(got))) and rel_error(got, want) <= TOLERANCE


_PREPARE = {
    "partition": _judge_partition,
    "sizes": _judge_sizes,
    "shuffled": _judge_shuffled,
    "train_stats": _judge_train_stats,
    "targets": _judge_targets,
    "unchanged": _judge_unchanged,
}


# The loops: rebuild the timeline of updates and validation passes from the log


def _timeline(forwards, final, init, train, spec):
    """(updates, validations, odd) rebuilt from the forward-pass log.

    An update is a change of the parameters between two logged moments. Its
    batch is the training forward pass made at the parameters it started
    from, or, when there were several (a loss logged twice, one forward per
    example whose gradients add up), the one of them or their union whose
    gradient step explains the change. A validation is a run of validation
    forward passes with nothing else between them.
    """
    n_train = len(train[0])
    updates, validations, odd = [], [], []
    params, seen, valid_rows, last = init, [], [], None
    for rows, values in forwards + [[None, final]]:
        if values != params:
            updates.append({"batch": _batch(seen, params, values, train, spec), "before": params,
                            "after": values, "validation_only": bool(valid_rows) and not seen})
            params, seen, valid_rows, last = values, [], [], "update"
        if rows is None:
            break
        if rows and all(0 <= i < n_train for i in rows):
            if rows not in seen:
                seen.append(rows)
            last = "train"
        elif rows and all(i >= n_train for i in rows):
            if last == "valid":
                validations[-1]["rows"] += rows
            else:
                validations.append({"rows": list(rows), "params": values, "updates_before": len(updates)})
            valid_rows += rows
            last = "valid"
        else:
            odd.append(rows)
    return updates, validations, odd


def _batch(seen, before, after, train, spec):
    """The rows of the update from `before` to `after`, among the training forwards `seen`."""
    union = [i for rows in seen for i in rows]
    if len(seen) > 1 and _finite(before) and _finite(after):
        for rows in reversed(seen):
            if rel_error(after, _step(train, rows, before, spec)) <= TOLERANCE:
                return rows
    return union


def _step(train, rows, params, spec):
    """The parameters after one reference update of run `spec` on the training rows `rows`."""
    X, y = train
    _, grad = _loss_and_grad(X[rows], y[rows], params, spec["loss"])
    return np.array(params, dtype=float) - spec["learning_rate"] * grad


def _judge_loop(question, part, inputs, data):
    runs = {spec["name"]: (spec, got) for spec, got in zip(inputs["runs"], data["runs"])}
    if part == "converges":
        return _judge_converges(inputs, *runs["long"])
    for name in REPLAYED:
        try:
            _judge_run(question, part, inputs, runs, name)
        except Failed as failure:
            raise Failed(f"{name} run: {failure}") from None


def _judge_run(question, part, inputs, runs, name):
    """Judge `part` on the replayed run `name`; the main run also compares its order with other seeds'."""
    spec, got = runs[name]
    if got["error"]:
        raise Failed(f"the loop raised {got['error']}")
    problem = inputs[spec["data"]]
    n = len(problem["train"]["X"])
    init = _flat(problem["init"])
    train = _arrays(problem["train"])
    updates, validations, odd = _timeline(got["forwards"], got["final"], init, train, spec)
    if odd:
        raise Failed(f"a forward pass saw rows that are not all training or all validation rows: {odd[0]}")
    training = [u for u in updates if not u["validation_only"]]
    if part == "step":
        _judge_steps(training, train, spec)
    elif part == "train_losses":
        _judge_train_losses(training, got["returned"], train, spec)
    elif part == "valid_losses":
        _judge_valid_losses(updates, validations, got["returned"], problem, spec)
    else:  # one_batch, one_example or batches; shuffle
        sizes = _batch_sizes(question, n, spec["batch_size"])
        epochs = _epochs(training, sizes, spec["num_epochs"], n)
        if part == "shuffle":
            _judge_shuffle(epochs, runs if name == "main" else None, init, train)


def _batch_sizes(question, n, batch_size):
    """The sizes of one epoch's batches, in order."""
    size = {"batch_gd": n, "sgd": 1, "minibatch_sgd": batch_size}[question]
    return [min(size, n - start) for start in range(0, n, size)]


def _epochs(training, sizes, num_epochs, n):
    """The batches of every epoch, after checking each epoch is `sizes` and uses every row once."""
    if not training:
        raise Failed("no update happened")
    if any(not u["batch"] for u in training):
        raise Failed("parameters changed without a forward pass on training data")
    k = len(sizes)
    if len(training) != k * num_epochs:
        raise Failed(f"{len(training)} updates in {num_epochs} epochs, expected {k} per epoch")
    epochs = [[u["batch"] for u in training[e * k:(e + 1) * k]] for e in range(num_epochs)]
    for e, batches in enumerate(epochs):
        got = [len(batch) for batch in batches]
        if sorted(got) != sorted(sizes):  # where the partial batch comes is not checked
            raise Failed(f"epoch {e + 1} had batches of sizes {got}, expected {sizes}")
        if sorted(i for batch in batches for i in batch) != list(range(n)):
            raise Failed(f"epoch {e + 1} did not use every one of the {n} training examples once")
    return epochs


def _judge_shuffle(epochs, runs, init, train):
    """Every epoch a new order, never dataset order; with `runs` (the main run) new batches and seed checks too."""
    n = len(train[0])
    for e, batches in enumerate(epochs):
        if [i for batch in batches for i in batch] == list(range(n)):
            raise Failed(f"epoch {e + 1} took the examples in dataset order")
        if e > 0 and batches == epochs[e - 1]:
            raise Failed(f"epoch {e + 1} used the same order as epoch {e}")
    if runs is None:
        return
    # Batches of more than one example must be new mixes, not the old ones
    # reordered. A correct shuffle repeats the mix by chance (1 in 3 * 10^4 or
    # more for the main run's batches, 1 in 210 for the alt run's), so only
    # the main run is checked, and only a mix repeated in every epoch fails.
    mixes = [sorted(map(sorted, batches)) for batches in epochs]
    if len(epochs[0]) < n and len(mixes) > 1 and all(a == b for a, b in zip(mixes, mixes[1:])):
        raise Failed("every epoch used the same batches as the one before, only reordered")

    def batches_of(name):
        spec, got = runs[name]
        if got["error"]:
            raise Failed(f"the loop raised {got['error']}")
        updates, _, _ = _timeline(got["forwards"], got["final"], init, train, spec)
        return [u["batch"] for u in updates if not u["validation_only"]]

    main = [b for batches in epochs[:2] for b in batches]
    if batches_of("same_seed") != main:
        raise Failed("the same rng seed gave another order once the global random state changed")
    if batches_of("other_seed") == main:
        raise Failed("two rng seeds gave the same order: shuffle with the rng argument")


def _flat(init):
    return [v for row in init["W"] for v in row] + [v for row in init["b"] for v in row]


def _arrays(part):
    return np.array(part["X"], dtype=float), np.array(part["y"], dtype=float)


def _loss_and_grad(X, y, params, loss):
    """The loss of the linear model X @ W + b on (X, y) and its gradient, flat like params.

    `loss` is the probe's loss_fn (probes/descent.py `_loss`): scale * mean((yhat - y + shift) ** 2).
    """
    d = X.shape[1]
    W, b = np.array(params[:d], dtype=float).reshape(d, 1), float(params[d])
    residual = X @ W + b - y + loss["shift"]
    value = loss["scale"] * float(np.mean(residual**2))
    upstream = 2 * loss["scale"] * residual / len(X)  # d value / d yhat
    return value, np.concatenate([(X.T @ upstream).ravel(), [upstream.sum()]])


def _finite(params):
    return all(v is not None for v in params)


def _judge_steps(training, train, spec):
    if not training:
        raise Failed("no update happened")
    for k, update in enumerate(training):
        if not update["batch"]:
            raise Failed(f"update {k + 1} changed the parameters without a forward pass on training data")
        if not (_finite(update["before"]) and _finite(update["after"])):
            raise Failed(f"update {k + 1}: the parameters became inf or nan")
        want = _step(train, update["batch"], update["before"], spec)
        if rel_error(update["after"], want) > TOLERANCE:
            raise Failed(f"update {k + 1} gave parameters {update['after']}, expected {want.tolist()}")


def _returned(returned, k):
    """The k-th list the loop returned (0 train_losses, 1 valid_losses) as floats or None, or a failure."""
    if isinstance(returned, str):
        raise Failed(returned)
    if isinstance(returned[k], str):
        raise Failed(f"{('train_losses', 'valid_losses')[k]}: {returned[k]}")
    return returned[k]


def _judge_train_losses(training, returned, train, spec):
    train_losses = _returned(returned, 0)
    if len(train_losses) != len(training) or not training:
        raise Failed(f"{len(train_losses)} train_losses for {len(training)} updates")
    X, y = train
    for k, (loss, update) in enumerate(zip(train_losses, training)):
        want, _ = _loss_and_grad(X[update["batch"]], y[update["batch"]], update["before"], spec["loss"])
        if loss is None or rel_error(loss, want) > TOLERANCE:
            raise Failed(f"train_losses[{k}] is {loss}, the batch's loss before the update is {want}")


def _judge_valid_losses(updates, validations, returned, problem, spec):
    valid_losses, num_epochs = _returned(returned, 1), spec["num_epochs"]
    if any(u["validation_only"] for u in updates):
        raise Failed("computing the validation loss changed the parameters")
    if len(valid_losses) != num_epochs or len(validations) != num_epochs:
        raise Failed(f"{len(valid_losses)} valid_losses and {len(validations)} validation passes "
                     f"for {num_epochs} epochs")
    trained = sum(1 for u in updates if u["batch"])
    per_epoch = trained // num_epochs
    X, y = _arrays(problem["valid"])
    n_train = len(problem["train"]["X"])
    for e, (loss, validation) in enumerate(zip(valid_losses, validations)):
        if not per_epoch or trained % num_epochs or validation["updates_before"] != (e + 1) * per_epoch:
            raise Failed(f"validation {e + 1} came after {validation['updates_before']} of {trained} "
                         "updates, not at the end of its epoch")
        if sorted(validation["rows"]) != list(range(n_train, n_train + len(X))):
            raise Failed(f"validation {e + 1} did not use every validation example once")
        if not _finite(validation["params"]):
            raise Failed("the parameters became inf or nan")
        want, _ = _loss_and_grad(X, y, validation["params"], spec["loss"])
        if loss is None or rel_error(loss, want) > TOLERANCE:
            raise Failed(f"valid_losses[{e}] is {loss}, the mean validation loss then is {want}")


def _judge_converges(inputs, spec, got):
    long = inputs["long"]
    X, y = _arrays(long["valid"])
    threshold = _converge_threshold(long, spec)
    if got["error"]:
        raise Failed(f"the loop raised {got['error']}")
    if not _finite(got["final"]):
        raise Failed("the parameters became inf or nan")
    loss, _ = _loss_and_grad(X, y, got["final"], spec["loss"])
    if not loss <= threshold:
        raise Failed(f"final validation loss {loss:.4g}, the reference reaches {threshold:.4g} or less")


def _converge_threshold(long, spec):
    """The reference loop's final validation loss, plus a margin for another shuffle."""
    X, y = _arrays(long["train"])
    Xv, yv = _arrays(long["valid"])
    params = np.array(_flat(long["init"]), dtype=float)
    start, _ = _loss_and_grad(Xv, yv, params, spec["loss"])
    order = np.arange(len(X))
    shuffle = np.random.default_rng(spec["seed"])
    for _ in range(spec["num_epochs"]):
        shuffle.shuffle(order)
        for i in range(0, len(order), spec["batch_size"]):
            batch = order[i:i + spec["batch_size"]]
            _, grad = _loss_and_grad(X[batch], y[batch], params, spec["loss"])
            params = params - spec["learning_rate"] * grad
    final, _ = _loss_and_grad(Xv, yv, params, spec["loss"])
    # Measured over 100 seeds: correct loops with other shuffles end within
    # 0.2% of the reference's drop in loss; loops with a broken update stay
    # above 50% of it (tests/corpus/descent.py).
    return final + 0.05 * (start - final)
