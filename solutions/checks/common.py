"""What every stage's judges share: CS231n relative error, central differences, judging part by part."""
import numpy as np


class Failed(Exception):
    """A part failed; the message says why, for the instructor."""


def rel_error(a, b):
    """CS231n relative error: max over entries of |a - b| / max(1e-8, |a| + |b|); inf if either holds inf or nan."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")  # every comparison with nan is False: it must never pass a tolerance
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient(f, x, h=1e-5):
    """Central differences (f(x + h) - f(x - h)) / 2h in float64, one entry of x at a time."""
    x = np.array(x, dtype=float)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = f(x)
        x[i] = old - h
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def judge_parts(parts, data, judge_part, gates=None):
    """{part: None if judge_part(part) passed, else a short failure message}.

    gates {part: value part}: a part that checks a side condition passes only
    when its value part passes too, so an answer that does nothing (returns
    its input, a copy, an object of the right type) earns nothing for it
    (docs/authoring.md, "Partial credit").
    """
    verdicts = {}
    for part in parts:
        try:
            if "error" in data:
                raise Failed(f"the probe stopped: {data['error']}")
            judge_part(part)
            verdicts[part] = None
        except Failed as failure:
            verdicts[part] = str(failure)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            # Data of the wrong form fails the part instead of crashing the grader.
            verdicts[part] = f"malformed probe data: {type(exc).__name__}: {exc}"
    for part, value in (gates or {}).items():
        if verdicts[part] is None and verdicts[value] is not None:
            verdicts[part] = f"passes only with the values right, and {value} failed: {verdicts[value]}"
    return verdicts
