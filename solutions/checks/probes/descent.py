"""Stage 02-descent probes: split_dataset and standardize, and the three loops with a recording model.

The recording model is a linear layer that logs, at every forward pass, which
training or validation rows it saw and its parameters' values; the judge
(checks/descent.py) rebuilds from that log what the loop did.
"""
import math
import random

from .common import describe

# The function a question's answer defines in the notebook.
FUNCTIONS = {
    "batch_gd": "batch_gradient_descent",
    "sgd": "stochastic_gradient_descent",
    "minibatch_sgd": "minibatch_sgd",
}


def probe(question, env, inputs, stand_ins=()):
    """Run the student's answer to `question` on `inputs` (no question here has prerequisites); JSON data."""
    state = random.getstate()  # the probe seeds the global state; the notebook's is put back
    try:
        match = env.get("match")
        if match is None:
            import match
        if question == "prepare":
            return _probe_prepare(env, match, inputs)
        fn = env.get(FUNCTIONS[question])
        if not callable(fn):
            return {"error": f"NameError: the notebook defines no function {FUNCTIONS[question]}"}
        # No stand-ins: the loops build on none of each other, so a loop that
        # calls a sibling gets what the student's sibling does.
        return {"runs": [_run_loop(question, fn, match, inputs, run) for run in inputs["runs"]]}
    except Exception as exc:
        return {"error": describe(exc)}
    finally:
        random.setstate(state)


def _dataset(match, part):
    return match.data.Dataset(match.mat(part["X"]), match.mat(part["y"]))


def _float(value):
    """A float for JSON: None stands for inf or nan."""
    value = float(value)
    return value if math.isfinite(value) else None


def _recorder(match, init, ids, log):
    """A one-output Linear model that logs [row ids, parameters] at every forward pass."""

    class Recorder(match.nn.Module):
        def __init__(self):
            self.linear = match.nn.Linear(len(init["W"]), 1)
            self.linear.W.data = match.List2D(len(init["W"]), 1, init["W"])
            self.linear.b.data = match.List2D(1, 1, init["b"])

        def forward(self, x):
            log.append([[ids.get(tuple(row), -1) for row in x.data.vals], self.values()])
            return self.linear(x)

        def parameters(self):
            return self.linear.parameters()

        def values(self):
            return [_float(v) for p in self.parameters() for row in p.data.vals for v in row]

    return Recorder()


def _loss(spec):
    """The run's loss_fn(yhat, y): scale * mean((yhat - y + shift) ** 2), from graph ops only.

    Nothing the student wrote: plain MSE is scale 1, shift 0; with another
    shift, loss_fn(y, yhat) is another loss.
    """
    def loss_fn(yhat, y):
        diff = yhat - y + spec["shift"]
        return (diff * diff).sum() * (spec["scale"] / (yhat.nrow * yhat.ncol))

    return loss_fn


def _run_loop(question, fn, match, inputs, run):
    data = inputs[run["data"]]
    rows = data["train"]["X"] + data["valid"]["X"]
    ids = {tuple(row): i for i, row in enumerate(rows)}
    log = []
    model = _recorder(match, data["init"], ids, log)
    kwargs = {
        "model": model,
        "loss_fn": _loss(run["loss"]),
        "train": _dataset(match, data["train"]),
        "valid": _dataset(match, data["valid"]),
        "learning_rate": run["learning_rate"],
        "num_epochs": run["num_epochs"],
    }
    if question == "minibatch_sgd":
        kwargs["batch_size"] = run["batch_size"]
    if question != "batch_gd":
        kwargs["rng"] = random.Random(run["seed"])
    random.seed(run["global_seed"])
    result = {"error": None}
    try:
        result["returned"] = _returned(fn(**kwargs))
    except Exception as exc:
        result["error"] = describe(exc)
    result["final"] = model.values()
    if run["data"] != "long":  # the long run is judged on its final parameters alone
        result["forwards"] = log
    return result


def _returned(value):
    """[train_losses, valid_losses], each a list of floats or a string saying what it was instead."""
    try:
        train_losses, valid_losses = value
    except Exception:
        return f"returned {type(value).__name__}, not (train_losses, valid_losses)"
    return [_losses(train_losses), _losses(valid_losses)]


def _losses(value):
    """A returned list of losses as floats (None for inf or nan), or a string saying what was wrong."""
    try:
        losses = list(value)
    except Exception:
        return f"a {type(value).__name__}, not a list of floats"
    for loss in losses:
        if isinstance(loss, bool) or not isinstance(loss, (int, float)):
            return f"a loss is a {type(loss).__name__}, not a float (use loss.item())"
    return [_float(loss) for loss in losses]


def _probe_prepare(env, match, inputs):
    return {"split": _probe_split(env, match, inputs["split"]),
            "standardize": _probe_standardize(env, match, inputs["standardize"])}


def _probe_split(env, match, inputs):
    split_dataset = env.get("split_dataset")
    ids = {tuple(row): i for i, row in enumerate(inputs["X"])}
    y_ids = {row[0]: i for i, row in enumerate(inputs["y"])}
    results = []
    for case in inputs["cases"]:
        dataset = _dataset(match, inputs)
        random.seed(case["global_seed"])
        try:
            parts = split_dataset(dataset, tuple(case["fractions"]), random.Random(case["seed"]))
            results.append([[[ids.get(tuple(row), -1) for row in part.X.data.vals],
                             [y_ids.get(row[0], -1) for row in part.y.data.vals]] for part in parts])
        except Exception as exc:
            results.append(describe(exc))
    return results


def standardize_calls(inputs):
    """{call: the datasets it passes}: train, valid and test; then another training set alone."""
    return {"all": [inputs["train"]] + inputs["others"], "train_only": [inputs["alone"]]}


def _probe_standardize(env, match, inputs):
    standardize = env.get("standardize")
    result = {}
    for name, parts in standardize_calls(inputs).items():
        given = [_dataset(match, part) for part in parts]  # fresh, whatever the last call did
        matrices = [(d.X, d.y) for d in given]
        try:
            out = standardize(*given)
            result[name] = [{"X": _rows(d.X), "y": _rows(d.y)} for d in out]
        except Exception as exc:
            result[name] = describe(exc)
        if name == "all":  # unchanged: the same Matrix objects, holding the same values
            try:
                result["inputs_after"] = [{"same_objects": d.X is X and d.y is y, "X": _rows(X), "y": _rows(y)}
                                          for d, (X, y) in zip(given, matrices)]
            except Exception as exc:
                result["inputs_after"] = describe(exc)
    return result


def _rows(m):
    """The values of a Matrix as rows of floats (None for inf or nan)."""
    return [[_float(v) for v in row] for row in m.data.vals]
