"""Stage 03-tradeoffs judges: updates_per_epoch and first_epoch_below.

Both questions are small functions with integer (or None) answers, so the
probe (probes/tradeoffs.py) calls the student's function on grader-chosen
cases and records each result; the judge compares them with the answers worked
out here, which never enter the kernel.
"""
import numpy as np

QUESTIONS = {
    "updates_per_epoch": {
        "sgd": "with batch_size 1 (SGD) every example is its own update: N updates per epoch "
        "(and 1 when batch_size is N)",
        "batch": "with batch_size N or larger (batch gradient descent) there is exactly 1 update per epoch "
        "(and N when batch_size is 1)",
        "divides": "when batch_size divides N there are N / batch_size updates, as a whole number",
        "remainder": "when batch_size does not divide N, the last smaller batch is one more update: "
        "ceil(N / batch_size)",
    },
    "first_epoch_below": {
        "first": "return the FIRST epoch whose loss is below target, numbering epochs from 1, "
        "and leave losses unchanged",
        "one": "if the very first loss is already below target the answer is epoch 1 "
        "(and a later epoch when the first loss is not)",
        "strict": "a loss exactly equal to target is not below it (use <, not <=)",
        "never": "return None when no loss is below target (also for an empty list), "
        "but an epoch when only the smallest loss is",
    },
}


# Neither question uses the other: no stand-ins.
PREREQUISITES = {question: [] for question in QUESTIONS}


def make_inputs(question, seed):
    """Cases for every part of `question`: {part: [case, ...]}, chosen with `seed`."""
    rng = np.random.default_rng([seed, list(QUESTIONS).index(question)])
    if question == "updates_per_epoch":
        return _update_cases(rng)
    if question == "first_epoch_below":
        return _loss_cases(rng)
    raise KeyError(f"stage 03-tradeoffs has no question {question!r}")


def _update_cases(rng):
    """[num_examples, batch_size] pairs; N and B are plain ints so they survive JSON."""
    def ints(low, high, size):
        return [int(v) for v in rng.integers(low, high, size=size, endpoint=True)]

    cases = {"sgd": [[n, 1] for n in ints(2, 5000, 3)]}
    # B = N, B a little above N, and B above 2N (where rounding N / B gives 0).
    n1, n2, n3 = ints(2, 2000, 3)
    cases["batch"] = [[n1, n1], [n2, n2], [n3, n3], [n1, n1 + ints(1, 100, 1)[0]], [n2, 2 * n2 + 1]]
    # Each of these two parts also holds a case of the other: no credit for
    # `return num_examples` or `return 1`, which are right on one of them only.
    cases["sgd"].append([n3, n3])
    cases["batch"].append([n3, 1])
    cases["divides"] = [[b * k, b] for b, k in zip(ints(2, 64, 3), ints(2, 150, 3))]
    # The remainder r runs from 1 to B - 1: both ends catch off-by-one rounding.
    remainder = []
    for b, k in zip(ints(3, 64, 3), ints(1, 150, 3)):
        remainder += [[b * k + 1, b], [b * k + b - 1, b], [b * k + int(rng.integers(1, b)), b]]
    cases["remainder"] = remainder
    return cases


def _loss_cases(rng):
    """[losses, target] pairs: noisy decreasing loss curves, like a real training run.

    Losses are odd multiples of 1/128: exact in binary, so a target equal to a
    loss compares equal after the JSON round trip, and never a whole number, so
    a loss returned by mistake is never taken for an epoch. Each part draws
    curves until one has the shape it needs.
    """
    def curve(low, high):
        length = int(rng.integers(low, high))
        start = rng.uniform(2.0, 8.0)
        values = start * np.exp(-rng.uniform(0.05, 0.3) * np.arange(length)) + rng.uniform(0, 0.5, length)
        return [round(float(v) * 64) / 64 + 1 / 128 for v in values]

    cases = {"first": [], "one": [], "strict": [], "never": []}
    while len(cases["first"]) < 4:
        losses = curve(6, 30)
        # The first crossing is at epoch i + 1 > 1 and a lower loss comes later,
        # so keeping the last crossing or the minimum gives another epoch.
        i = int(rng.integers(1, len(losses) - 1))
        if min(losses[i + 1:]) < losses[i] < min(losses[:i]):
            cases["first"].append([losses, (losses[i] + min(losses[:i])) / 2])
    while len(cases["one"]) < 2:
        losses = curve(3, 20)
        if min(losses[1:]) < losses[0]:  # a later, lower loss: not the last crossing, not the minimum
            cases["one"].append([losses, losses[0] + 0.25])
    cases["one"].append(cases["first"][0])  # no credit for `return 1`, right on the cases above only
    while len(cases["strict"]) < 3:
        losses = curve(6, 30)
        # The target equals a loss that nothing before it beats; the answer is
        # the first loss strictly below it, which comes later.
        i = int(rng.integers(1, len(losses) - 1))
        if min(losses[i + 1:]) < losses[i] < min(losses[:i]):
            cases["strict"].append([losses, losses[i]])
    losses = curve(3, 20)
    while losses.count(min(losses)) > 1:
        losses = curve(3, 20)
    # The last case is a control: only the (unique) smallest loss is below
    # target, so a function that always returns None fails this part too.
    lowest = min(losses)
    cases["never"] = [[losses, lowest - 0.5], [losses, lowest], [[], 1.0], [losses, lowest + 1 / 256]]
    return cases


def expected(question, case):
    """The right answer for one case."""
    if question == "updates_per_epoch":
        n, b = case
        return -(-n // b)
    losses, target = case
    return next((epoch for epoch, loss in enumerate(losses, start=1) if loss < target), None)


def judge(question, inputs, data):
    """{part: None if every case was right, else the first wrong case}."""
    verdicts = {}
    for part in QUESTIONS[question]:
        cases, got = inputs[part], data.get(part) if isinstance(data, dict) else None
        if not isinstance(got, list) or len(got) != len(cases):
            verdicts[part] = f"malformed probe data for {len(cases)} cases: {str(got)[:100]}"
            continue
        failures = (_wrong(question, case, result) for case, result in zip(cases, got))
        verdicts[part] = next((failure for failure in failures if failure is not None), None)
    return verdicts


def _wrong(question, case, result):
    """None if `result` answers `case`, else what went wrong."""
    want = expected(question, case)
    if not isinstance(result, dict):
        return f"malformed probe result {str(result)[:100]}"
    if want is None:
        right = result.get("kind") == "none"
    else:
        right = result.get("kind") == "int" and result.get("value") == want
    if right:
        return None
    shown = result.get("value", result.get("repr", result.get("kind")))
    return f"{question}{tuple(case)!r} gave {str(shown)[:100]}, expected {want!r}"
