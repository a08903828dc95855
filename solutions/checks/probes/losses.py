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


def _reused(env, case, uses):
    """x.grad when x feeds two nodes, and when it feeds either one alone (the other upstream None)."""
    def grad(first, second):
        x = _matrix(env, case["x"])
        c1, c2 = (_matrix(env, c) if wanted else None for c, wanted in zip(case["upstream"], (first, second)))
        terms = [term for term in uses(x, c1, c2) if term is not None]
        (terms[0] + terms[1] if len(terms) == 2 else terms[0]).backward()
        return grid(x.grad)

    return {"grad": grad(True, True), "first": grad(True, False), "second": grad(False, True)}


def _probe_matrix_mean(env, inputs):
    def gradient(case):
        x = _matrix(env, case["x"])
        out = x.mean()
        forward = grid(out.data)
        (out * _matrix(env, case["upstream"])).backward()
        return {"forward": forward, "grad": grid(x.grad)}

    def uses(x, c1, c2):  # two mean nodes with the same child
        return [x.mean() * c if c is not None else None for c in (c1, c2)]

    return {
        "gradient": [attempt(lambda: gradient(case)) for case in inputs["gradient"]],
        "accumulates": attempt(lambda: _reused(env, inputs["accumulates"], uses)),
    }


def _probe_matrix_abs(env, inputs):
    def gradient(case):
        x = _matrix(env, case["x"])
        out = x.abs()
        forward = grid(out.data)
        (out * _matrix(env, case["upstream"])).sum().backward()
        return {"forward": forward, "grad": grid(x.grad)}

    def uses(x, g1, g2):  # x.abs() and abs(x): two nodes with the same child
        return [(x.abs() * g1).sum() if g1 is not None else None, (abs(x) * g2).sum() if g2 is not None else None]

    return {
        "gradient": [attempt(lambda: gradient(case)) for case in inputs["gradient"]],
        "accumulates": attempt(lambda: _reused(env, inputs["accumulates"], uses)),
        "at_zero": attempt(lambda: gradient(inputs["at_zero"])),
    }


def _probe_losses(env, inputs):
    def case(name, case):
        yhat, y = _matrix(env, case["yhat"]), _matrix(env, case["y"])
        try:
            out = env[name](yhat, y)
        except Exception as exc:
            return {"error": describe(exc)}

        def gradient():
            (out * _matrix(env, case["upstream"])).backward()
            return grid(yhat.grad)

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
