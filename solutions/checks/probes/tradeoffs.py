"""Stage 03-tradeoffs probes: call updates_per_epoch and first_epoch_below on every case and record the results."""
import operator

from .common import describe


def probe(question, env, inputs, stand_ins=()):
    """Call the student's function on every case: {part: [result, ...]}, plain JSON (no prerequisites here)."""
    fn = env.get(question)
    data = {}
    for part, cases in inputs.items():
        data[part] = []
        for case in cases:
            if not callable(fn):
                data[part].append({"kind": "error", "repr": f"no function named {question} in the notebook"})
                continue
            args = [list(case[0]), case[1]] if question == "first_epoch_below" else list(case)
            try:
                result = _encode(fn(*args))
                if question == "first_epoch_below" and args[0] != case[0]:
                    result = {"kind": "mutated", "repr": "changed the losses list it was given"}
            except Exception as exc:  # a crash is a wrong answer, not a grader error
                result = {"kind": "error", "repr": describe(exc)}
            data[part].append(result)
    return data


def _encode(value):
    """A JSON-safe record of a returned value; numpy integers and 4.0 count as ints."""
    if value is None:
        return {"kind": "none", "repr": "None"}
    if not isinstance(value, (bool, str, bytes)):
        try:
            return {"kind": "int", "value": operator.index(value)}
        except TypeError:
            pass
        try:
            number = float(value)
            if number.is_integer():
                return {"kind": "int", "value": int(number)}
        except Exception:
            pass
    try:
        shown = repr(value)[:100]
    except Exception:
        shown = f"<a {type(value).__name__}>"
    return {"kind": "other", "repr": shown}
