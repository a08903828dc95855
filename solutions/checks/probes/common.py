"""What every stage's probe shares: student errors as text, plain numbers and grids, stand-ins put on and taken off."""
import contextlib
import math


def describe(exc):
    """'ExcType: message', kept short whatever the student's exception holds."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable>"
    return f"{type(exc).__name__}: {message}"[:300]


def attempt(fn):
    """{"ok": fn()}, or {"error": ...} when the student's code raises."""
    try:
        return {"ok": fn()}
    except Exception as exc:
        return {"error": describe(exc)}


def number(value):
    """A finite float from whatever the student returned, else an error."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"expected a finite number, got {result}")
    return result


def grid(value):
    """Rows of finite floats from a List2D (its .vals) or a list of row lists, else an error."""
    rows = getattr(value, "vals", value)
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, (list, tuple)) for row in rows):
        raise TypeError(f"expected a List2D or a list of rows, got {type(value).__name__}")
    return [[number(v) for v in row] for row in rows]


_MISSING = object()


@contextlib.contextmanager
def patched(env, stand_ins):
    """Each stand-in's PATCHES [(class name in env, attribute, function)] on env's classes; restored after."""
    swaps = [(env[class_name], attribute, function)
             for patches in stand_ins for class_name, attribute, function in patches]
    saved = [(cls, attribute, cls.__dict__.get(attribute, _MISSING)) for cls, attribute, _ in swaps]
    try:
        for cls, attribute, function in swaps:
            setattr(cls, attribute, function)
        yield
    finally:
        for cls, attribute, old in reversed(saved):
            if old is _MISSING:
                delattr(cls, attribute)
            else:
                setattr(cls, attribute, old)
