"""Stage 01-losses probes: run the student's List2D.mean/abs, Matrix.mean/abs and mse/mae on the inputs.

The data holds values and the student's own analytic gradients; the judge
(checks/losses.py) recomputes everything with numpy.
"""
from .common import attempt, describe, grid, number, patched


def probe(question, env, inputs, stand_ins=()):
    """Run the student's answer to `question` on `inputs`, with `stand_ins` for its prerequisites; JSON data."""
    try:
        with patched(env, stand_ins):
            return _PROBES[question](env, inputs)
    except Exception as exc:
        return {"error": describe(exc)}


def _matrix(env, rows):
    """A fresh leaf Matrix holding `rows`."""
    return env["Matrix"](env["List2D"](len(rows), len(rows[0]), rows))


def _inside(env, rows):
    """(x, t): a leaf x holding `rows` and the node t = x * 1.0, which holds the same values.

    The answer's op is applied to t and the gradient read from x, so it counts
    only when backward() goes from the op's result through its children on to
    t and x, as it must to reach a network's parameters: a result without
    children still gets its own _gradient run, but nothing below it does.
    """
    x = _matrix(env, rows)
    return x, x * 1.0


def _probe_list2d_mean(env, inputs):
    def case(rows):
        x = env["List2D"](len(rows), len(rows[0]), rows)
        return {"mean": attempt(lambda: number(x.mean())), "after": attempt(lambda: grid(x))}

    return {"value": case(inputs["value"]), "shapes": [case(rows) for rows in inputs["shapes"]]}


def _probe_list2d_abs(env, inputs):
    List2D, rows = env["List2D"], inputs["x"]

    def case(call):
        x = List2D(len(rows), len(rows[0]), rows)
        try:
            result = call(x)
        except Exception as exc:
            return {"error": describe(exc)}
        return {
            "is_list2d": isinstance(result, List2D),
            "is_x": result is x,
            "shape": attempt(lambda: [int(result.nrow), int(result.ncol)]),
            "vals": attempt(lambda: grid(result)),
            "after": attempt(lambda: grid(x)),
        }

    return {"method": case(lambda x: x.abs()), "builtin": case(abs)}


def _reused(env, case, ops):
    """x.grad when t feeds the nodes op1(t) and op2(t), and when it feeds either alone; the two nodes' values."""
    def run(wanted):
        x, t = _inside(env, case["x"])
        uses = [(op(t), c) for op, c, want in zip(ops, case["upstream"], wanted) if want]
        forward = [grid(node.data) for node, _ in uses]
        terms = [(node * _matrix(env, c)).sum() for node, c in uses]
        (terms[0] + terms[1] if len(terms) == 2 else terms[0]).backward()
        return {"grad": grid(x.grad), "forward": forward}

    both = run((True, True))
    return {**both, "first": run((True, False))["grad"], "second": run((False, True))["grad"]}


def _probe_matrix_mean(env, inputs):
    def gradient(case):
        x, t = _inside(env, case["x"])
        out = t.mean()
        forward = grid(out.data)
        (out * _matrix(env, case["upstream"])).backward()
        return {"forward": forward, "grad": grid(x.grad)}

    ops = (lambda t: t.mean(), lambda t: t.mean())  # two mean nodes with the same child
    return {
        "gradient": [attempt(lambda: gradient(case)) for case in inputs["gradient"]],
        "accumulates": attempt(lambda: _reused(env, inputs["accumulates"], ops)),
    }


def _probe_matrix_abs(env, inputs):
    def gradient(case):
        x, t = _inside(env, case["x"])
        out = t.abs()
        forward = grid(out.data)
        (out * _matrix(env, case["upstream"])).sum().backward()
        return {"forward": forward, "grad": grid(x.grad)}

    ops = (lambda t: t.abs(), abs)  # t.abs() and abs(t): two nodes with the same child
    return {
        "gradient": [attempt(lambda: gradient(case)) for case in inputs["gradient"]],
        "accumulates": attempt(lambda: _reused(env, inputs["accumulates"], ops)),
        "at_zero": attempt(lambda: gradient(inputs["at_zero"])),
    }


def _probe_losses(env, inputs):
    def case(name, case):
        leaf, yhat = _inside(env, case["yhat"])  # yhat as a network's output: a node, not a leaf
        y = _matrix(env, case["y"])
        try:
            out = env[name](yhat, y)
        except Exception as exc:
            return {"error": describe(exc)}

        def gradient():
            (out * _matrix(env, case["upstream"])).backward()
            return grid(leaf.grad)

        return {
            "is_matrix": isinstance(out, env["Matrix"]),
            "value": attempt(lambda: grid(out.data)),
            "inputs_after": attempt(lambda: [grid(yhat.data), grid(y.data)]),
            "grad": attempt(gradient),
        }

    return {name: case(name, inputs[name]) for name in ("mse", "mae")}


_PROBES = {
    "list2d_mean": _probe_list2d_mean,
    "list2d_abs": _probe_list2d_abs,
    "matrix_mean": _probe_matrix_mean,
    "matrix_abs": _probe_matrix_abs,
    "losses": _probe_losses,
}
