"""Generate a stage-02 class of honest variants with planted copies among them, for `sgdkit similarity`.

Honest students write every function of stage 02 their own way: each body is
put together from independent choices (how to shuffle, how to cut batches, in
which order to step, how to validate, ...), their own names and comments; a few students wrote one function as one of the
corpus's valid alternatives (tests/corpus/descent.py), each alternative one student's.
Two honest students therefore share common passages, never a whole notebook.

A planted copy takes another student's notebook and disguises it: every local
name renamed, the two functions of the prepare cell swapped, the comments
replaced, and one function rewritten from scratch.

    python examples/similar_class.py --out DIR [--students 600] [--pairs 6] [--seed 0]

writes DIR/<name>.ipynb and DIR/PLANTED.csv (copy, source, changed function).
The tests (tests/test_similarity.py) and benchmarks/bench_similarity.py import
`generate`; the output is the same for the same arguments.
"""
import argparse
import csv
import importlib.util
import random
import re
import sys
from pathlib import Path

import nbformat

from sgdkit import ASSIGNMENTS
from sgdkit.answers import fill

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ASSIGNMENTS / "02-descent" / "descent.ipynb"
# The answered functions and their questions (CONTRACT.md).
QUESTIONS = {"split_dataset": "prepare", "standardize": "prepare", "batch_gradient_descent": "batch_gd",
             "stochastic_gradient_descent": "sgd", "minibatch_sgd": "minibatch_sgd"}
FUNCTIONS = list(QUESTIONS)
# Each placeholder's spellings; a student picks one per placeholder and keeps it.
NAMES = {
    "idx": ["indices", "idx", "order", "perm", "shuffled", "ids", "rows_order"],
    "parts": ["parts", "splits", "out", "datasets", "pieces", "result"],
    "bounds": ["bounds", "cuts", "edges", "boundaries", "marks"],
    "acc": ["total", "running", "acc", "cumulative", "so_far"],
    "n": ["n", "N", "count", "size", "num"],
    "tl": ["train_losses", "train_hist", "losses", "tr_losses", "history"],
    "vl": ["valid_losses", "val_hist", "val_losses", "va_losses", "valid_history"],
    "ep": ["_", "epoch", "e", "ep", "epoch_number"],
    "X": ["X", "xb", "X_batch", "inputs", "features"],
    "y": ["y", "yb", "y_batch", "targets", "labels"],
    "loss": ["loss", "batch_loss", "L", "objective", "cost"],
    "p": ["p", "param", "w", "parameter", "theta"],
    "bs": ["start", "i", "begin", "lo", "offset"],
    "batch": ["batch", "chunk", "rows", "members", "sel"],
    "cols": ["columns", "cols", "features_by_column", "by_column", "transposed"],
    "means": ["means", "mu", "col_means", "averages", "centres"],
    "stds": ["stds", "sigma", "col_stds", "spreads", "scales"],
    "res": ["result", "outputs", "standardized", "new_sets", "done"],
    "ds": ["dataset", "ds", "data", "d", "part"],
    "yhat": ["yhat", "pred", "predictions", "out", "guess"],
}
COMMENTS = ["# shuffle first so every part is random", "# TODO: check this again", "# step downhill",
            "# as in the lecture", "# reset the gradients", "# record the loss", "# keep the last batch",
            "# validation after every epoch", "# the training statistics only!", "# cut the data",
            "# this took me a while", "# forward pass", "# backward pass", "# update every parameter",
            "# see lecture slide 14", "# mean and std per column", "# works, tests pass"]


def _pick(rng, options):
    return options[rng.randrange(len(options))]


# ---------------------------------------------------------------- the pieces students choose from

def _split(c):
    """split_dataset, one of several ways to shuffle, cut and build."""
    shuffle = {
        0: ["{idx} = list(range(len(dataset)))", "rng.shuffle({idx})"],
        1: ["{n} = len(dataset)", "{idx} = rng.sample(range({n}), {n})"],
        2: ["{idx} = [i for i in range(len(dataset))]", "rng.shuffle({idx})"],
        3: ["{idx} = sorted(range(len(dataset)), key=lambda _: rng.random())"],
    }[c["shuffle"]]
    cut = {
        0: ["{bounds} = [0]", "{acc} = 0.0", "for f in fractions:", "    {acc} += f",
            "    {bounds}.append(round({acc} * len({idx})))"],
        1: ["{bounds} = [0] + [round(t * len({idx})) for t in itertools.accumulate(fractions)]"],
        2: ["sizes = [round(f * len({idx})) for f in fractions[:-1]]", "sizes.append(len({idx}) - sum(sizes))",
            "{bounds} = [0]", "for s in sizes:", "    {bounds}.append({bounds}[-1] + s)"],
        3: ["{acc} = 0.0", "{bounds} = [0]", "for k in range(len(fractions)):", "    {acc} = {acc} + fractions[k]",
            "    {bounds} += [int(round({acc} * len({idx})))]"],
    }[c["cut"]]
    build = {
        0: ["{parts} = []", "for a, b in zip({bounds}, {bounds}[1:]):", "    {X}, {y} = dataset[{idx}[a:b]]",
            "    {parts}.append(Dataset({X}, {y}))"],
        1: ["{parts} = [Dataset(*dataset[{idx}[a:b]]) for a, b in zip({bounds}[:-1], {bounds}[1:])]"],
        2: ["{parts} = []", "for k in range(len({bounds}) - 1):",
            "    {parts}.append(Dataset(*dataset[{idx}[{bounds}[k]:{bounds}[k + 1]]]))"],
    }[c["build"]]
    check = [["assert abs(sum(fractions) - 1.0) < 1e-9"], ["if not fractions:", "    return ()"], []][c["check"]]
    end = [["return tuple({parts})"], ["return (*{parts},)"]][c["end"]]
    return check + shuffle + cut + build + end


def _standardize(c):
    """standardize, one of several ways to get the statistics and apply them."""
    cols = [["{cols} = train.X.data.T.vals"], ["{cols} = list(zip(*train.X.data.vals))"],
            ["{cols} = [[row[j] for row in train.X.data.vals] for j in range(train.X.ncol)]"]][c["cols"]]
    means = [["{means} = [sum(col) / len(col) for col in {cols}]"],
             ["{means} = [statistics.mean(col) for col in {cols}]"],
             ["{means} = []", "for col in {cols}:", "    {means}.append(sum(col) / len(col))"]][c["means"]]
    stds = [["{stds} = [math.sqrt(sum((v - m) ** 2 for v in col) / len(col)) for col, m in zip({cols}, {means})]"],
            ["{stds} = [statistics.pstdev(col) for col in {cols}]"],
            ["{stds} = [statistics.stdev(col) for col in {cols}]"],
            ["{stds} = []", "for col, m in zip({cols}, {means}):",
             "    {stds}.append((sum((v - m) ** 2 for v in col) / (len(col) - 1)) ** 0.5)"]][c["stds"]]
    apply = [["    {X} = Matrix(({ds}.X.data - List2D(1, len({means}), [{means}])) / List2D(1, len({stds}), [{stds}]))"],
             ["    rows = [[(v - m) / s for v, m, s in zip(row, {means}, {stds})] for row in {ds}.X.data.vals]",
              "    {X} = match.mat(rows)"],
             ["    rows = []", "    for row in {ds}.X.data.vals:",
              "        rows.append([(row[j] - {means}[j]) / {stds}[j] for j in range(len(row))])",
              "    {X} = Matrix(List2D(len(rows), len({means}), rows))"]][c["apply"]]
    copy_y = [["    {y} = Matrix(List2D({ds}.y.nrow, {ds}.y.ncol, {ds}.y.data.vals))"],
              ["    {y} = match.mat([row[:] for row in {ds}.y.data.vals])"],
              ["    {y} = match.mat([list(r) for r in {ds}.y.data.vals])"]][c["copy_y"]]
    loop = [["{res} = []", "for {ds} in (train, *others):"], ["{res} = []", "for {ds} in [train] + list(others):"]][c["loop"]]
    guard = [[], ["{stds} = [s if s > 0 else 1.0 for s in {stds}]"],
             ["assert all(s > 0 for s in {stds}), 'a constant column'"]][c["guard"]]
    return cols + means + stds + guard + loop + apply + copy_y + ["    {res}.append(Dataset({X}, {y}))", "return tuple({res})"]


def _step(c, indent):
    """The body of one update on {X}, {y}: forward, fresh gradients, backward, step, record."""
    fresh = [["model.zero_grad()"],
             ["for {p} in model.parameters():", "    {p}.grad = List2D({p}.nrow, {p}.ncol, 0.0)"]][c["fresh"]]
    move = [["for {p} in model.parameters():", "    {p}.data = {p}.data - learning_rate * {p}.grad"],
            ["for {p} in model.parameters():", "    {p}.data -= learning_rate * {p}.grad"],
            ["for {p} in model.parameters():", "    {p}.data = {p}.data - {p}.grad * learning_rate"],
            ["params = model.parameters()", "for k in range(len(params)):",
             "    params[k].data = params[k].data - learning_rate * params[k].grad"]][c["move"]]
    forward = [["{loss} = loss_fn(model({X}), {y})"], ["{yhat} = model({X})", "{loss} = loss_fn({yhat}, {y})"]][c["forward"]]
    value = ["{loss}.item()", "{loss}.data.vals[0][0]", "float({loss}.data.vals[0][0])"][c["item"]]
    record = [["{tl}.append(" + value + ")"], ["{tl}.append(float(" + value + "))"],
              ["{tl} += [" + value + "]"]][c["record"]]
    order = [forward + fresh + ["{loss}.backward()"] + move + record,
             fresh + forward + record + ["{loss}.backward()"] + move,
             forward + record + fresh + ["{loss}.backward()"] + move][c["order"]]
    return [" " * indent + line if line else line for line in order]


def _validate(c, indent):
    report = [[], ["if {ep} % 10 == 0:", "    print(f'epoch {{{ep}}}: {{{tl}[-1]:.4f}}')"],
              ["print('epoch', {ep}, 'train', {tl}[-1])"]][c["progress"]]
    lines = report + [["{vl}.append(evaluate(model, loss_fn, valid))"],
             ["Xv, yv = valid[list(range(len(valid)))]", "{vl}.append(loss_fn(model(Xv), yv).item())"],
             ["{vl}.append(float(evaluate(model, loss_fn, valid)))"]][c["validate"]]
    return [" " * indent + line for line in lines]


def _epochs(c):
    """(head lines, indent of the body, tail lines) of the epoch loop."""
    return [(["for {ep} in range(num_epochs):"], 4, []),
            (["{ep} = 0", "while {ep} < num_epochs:"], 4, ["    {ep} += 1"])][c["epochs"]]


def _reshuffle(c, indent):
    lines = [["rng.shuffle({idx})"], ["{idx} = rng.sample({idx}, len({idx}))"],
             ["{idx} = sorted({idx}, key=lambda _: rng.random())"]][c["reshuffle"]]
    return [" " * indent + line for line in lines]


def _end(c):
    return [["return {tl}, {vl}"], ["return ({tl}, {vl})"], ["assert len({vl}) == num_epochs", "return {tl}, {vl}"]][c["end_loop"]]


def _init(c):
    first = [[], ["model.zero_grad()"], ["assert num_epochs >= 0"]][c["prelude"]]
    return first + [["{tl}, {vl} = [], []"], ["{tl} = []", "{vl} = []"]][c["init"]]


def _order(c):
    """The list of example indices a loop shuffles."""
    return [["{idx} = list(range(len(train)))"], ["{n} = len(train)", "{idx} = list(range({n}))"],
            ["{idx} = [k for k in range(len(train))]"]][c["order_init"]]


def _bgd(c):
    head, ind, tail = _epochs(c)
    fetch = [["{X}, {y} = train[list(range(len(train)))]"], ["{X}, {y} = train.X, train.y"],
             ["everything = list(range(len(train)))", "{X}, {y} = train[everything]"]][c["fetch"]]
    return (_init(c) + fetch + head + _step(c, ind) + _validate(c, ind) + tail + _end(c))


def _sgd(c):
    head, ind, tail = _epochs(c)
    visit = [["for k in {idx}:", "    {X}, {y} = train[[k]]"],
             ["for k in range(len({idx})):", "    {X}, {y} = train[[{idx}[k]]]"],
             ["for k in {idx}:", "    {X}, {y} = train[[k, ]]"]][c["visit"]]
    body = [" " * ind + line for line in visit] + _step(c, ind + 4)
    return (_order(c) + _init(c) + head + _reshuffle(c, ind) + body
            + _validate(c, ind) + tail + _end(c))


def _minibatch(c):
    head, ind, tail = _epochs(c)
    cut = [["for {bs} in range(0, len({idx}), batch_size):", "    {batch} = {idx}[{bs}:{bs} + batch_size]"],
           ["batches = [{idx}[k:k + batch_size] for k in range(0, len({idx}), batch_size)]", "for {batch} in batches:"],
           ["for k in range(math.ceil(len({idx}) / batch_size)):",
            "    {batch} = {idx}[k * batch_size:(k + 1) * batch_size]"]][c["slices"]]
    body = ([" " * ind + line for line in cut] + [" " * (ind + 4) + "{X}, {y} = train[{batch}]"]
            + _step(c, ind + 4))
    return (_order(c) + _init(c) + head + _reshuffle(c, ind) + body
            + _validate(c, ind) + tail + _end(c))


BUILDERS = {"split_dataset": _split, "standardize": _standardize, "batch_gradient_descent": _bgd,
            "stochastic_gradient_descent": _sgd, "minibatch_sgd": _minibatch}
# Every choice and its number of options: a function's builder reads the ones it needs.
CHOICES = {"shuffle": 4, "cut": 4, "build": 3, "check": 3, "end": 2, "cols": 3, "means": 3, "stds": 4,
           "apply": 3, "copy_y": 3, "loop": 2, "fresh": 2, "move": 4, "forward": 2, "record": 3, "order": 3,
           "validate": 3, "epochs": 2, "reshuffle": 3, "init": 2, "fetch": 3, "visit": 3, "slices": 3, "progress": 3,
           "end_loop": 3, "item": 3, "prelude": 3, "order_init": 3, "guard": 3}
# Choices a student makes once for the whole notebook (habits); every other one is made per function.
HABITS = {"fresh", "move", "forward", "record", "order", "init", "epochs", "progress", "item"}
# How often a student breaks a habit in one function.
INCONSISTENT = 0.3


def _corpus_alternatives():
    """{function: [valid alternative bodies]} from tests/corpus/descent.py."""
    spec = importlib.util.spec_from_file_location("corpus_descent", ROOT / "tests" / "corpus" / "descent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = {}
    for entry in module.ALTERNATIVES:
        found.setdefault(entry["function"], []).append(entry["solution"])
    return found


class Student:
    """One honest student's way of writing: habits, a choice per function, names, comments."""

    def __init__(self, rng):
        self.rng = rng
        habits = {name: rng.randrange(n) for name, n in CHOICES.items() if name in HABITS}
        self.choices = {f: {name: rng.randrange(n) for name, n in CHOICES.items()} for f in FUNCTIONS}
        for f in FUNCTIONS:
            if rng.random() >= INCONSISTENT:
                self.choices[f].update(habits)
        self.verbatim = {}  # function -> a corpus alternative this student wrote (generate hands them out)
        self.names = {key: _pick(rng, options) for key, options in NAMES.items()}
        self.comment_rate = rng.choice([0.0, 0.1, 0.3])

    def body(self, function):
        """The function's body as this student writes it: names filled in, comments sprinkled, unindented."""
        lines = (self.verbatim[function].splitlines() if function in self.verbatim
                 else [line.format(**self.names) for line in BUILDERS[function](self.choices[function])])
        out = []
        for line in lines:
            if line.strip() and self.rng.random() < self.comment_rate:
                out.append(line[: len(line) - len(line.lstrip())] + _pick(self.rng, COMMENTS))
            out.append(line)
        return "\n".join(out) + "\n"

    def answers(self):
        return {f: self.body(f) for f in FUNCTIONS}


def disguise(source: Student, rng: random.Random) -> tuple[Student, str]:
    """A copy of `source`'s work: renamed, recommented, one function rewritten; (copy, the changed function)."""
    copy = Student.__new__(Student)
    copy.rng = rng
    copy.choices = {f: dict(c) for f, c in source.choices.items()}
    copy.names = {key: _pick(rng, [o for o in options if o != source.names[key]] or options)
                  for key, options in NAMES.items()}
    copy.verbatim = {f: _renamed(text, copy.names) for f, text in source.verbatim.items()}
    copy.comment_rate = rng.choice([0.2, 0.4])
    changed = _pick(rng, FUNCTIONS)
    copy.verbatim.pop(changed, None)
    copy.choices[changed] = {name: rng.randrange(n) for name, n in CHOICES.items()}
    return copy, changed


def _renamed(text: str, names: dict[str, str]) -> str:
    """A corpus body with a few of its local names respelled (a copier renames those too)."""
    for old, key in (("indices", "idx"), ("order", "idx"), ("parts", "parts"), ("train_losses", "tl"),
                     ("valid_losses", "vl"), ("loss", "loss"), ("result", "res")):
        text = re.sub(rf"\b{old}\b", names[key], text)
    return text


def notebook(student: Student, template, swap: bool = False) -> str:
    """The student's filled-in notebook as text; `swap` puts standardize before split_dataset."""
    nb = fill(template, student.answers())
    imports = "import itertools\nimport statistics\n"
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("import math"):
            cell.source = imports + cell.source
        if swap and cell.cell_type == "code" and cell.source.startswith("def split_dataset"):
            first, _, second = cell.source.partition("\n\n\ndef standardize")
            cell.source = "def standardize" + second + "\n\n\n" + first
    return nbformat.writes(nb) + "\n"


def generate(students: int = 600, pairs: int = 6, seed: int = 0) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """({file name: notebook text}, [(copy, source, changed function)]): `students` notebooks, `pairs` of them copies."""
    rng = random.Random(seed)
    template = nbformat.read(STUDENT, as_version=4)
    alternatives = _corpus_alternatives()
    honest = [Student(random.Random(rng.getrandbits(64))) for _ in range(students - pairs)]
    # Each of the corpus's alternatives, written apart, is one student's own answer: never two students'.
    for function, bodies in alternatives.items():
        for body, author in zip(bodies, rng.sample(range(len(honest)), len(bodies))):
            honest[author].verbatim[function] = body
    files = {f"student{i:04d}.ipynb": notebook(s, template) for i, s in enumerate(honest)}
    planted = []
    sources = rng.sample(range(len(honest)), pairs)
    for j, source in enumerate(sources):
        copy, changed = disguise(honest[source], random.Random(rng.getrandbits(64)))
        name = f"student{len(honest) + j:04d}.ipynb"
        files[name] = notebook(copy, template, swap=True)
        planted.append((name, f"student{source:04d}.ipynb", changed))
    return files, planted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--students", type=int, default=600)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    files, planted = generate(args.students, args.pairs, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    with open(args.out / "PLANTED.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("copy", "source", "changed"), *planted])
    print(f"{len(files)} notebooks in {args.out}, {len(planted)} of them planted copies (PLANTED.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
