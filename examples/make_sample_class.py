"""Generate examples/sample-class/<stage>/: a realistic class of submissions for `sgdkit demo`.

Every submission starts from the student notebook `sgdkit build` wrote,
assignments/<stage>/<notebook>.ipynb, and fills its `...` answer regions the
way a student would: with the master notebook's solution, with a bug or a
valid alternative from the stage's corpus (tests/corpus/<name>.py), or not at
all. EXPECTED.csv records the outcome grading must give each file (full,
partial or zero per question, and the status keyword); `sgdkit demo` and the
tests check the grader against it.

Run it after `sgdkit build` whenever a notebook or a corpus changes:

    python examples/make_sample_class.py           # rewrite the sample class
    python examples/make_sample_class.py --check   # exit 1 if it is out of date

The output is deterministic: with nothing changed, a rerun leaves git clean.
"""
import argparse
import csv
import importlib.util
import io
import sys
from pathlib import Path

import nbformat

from sgdkit.answers import fill, solution_regions

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "sample-class"
HANG = """\
# scratch: train until the loss is below 0.01 (nothing here ever changes the loss)
loss = 1.0
epochs = 0
while loss > 0.01:
    epochs += 1
"""
# The samples whose notebook has a cell that raises when it runs (status
# cell-error): there the notebook's own cells call what the student left blank
# or broke. Kept by hand; `sgdkit demo` checks it against real grading.
CELL_ERRORS = {
    "02-descent": {"partial work", "two bugs", "blank"},  # two bugs: summed gradients overflow
    "03-tradeoffs": {"blank"},
}
WRITTEN_ANSWER = ("Per epoch, batch gradient descent wins: each of its updates uses the exact gradient. "
                  "Per update and per second, minibatch SGD with B = 32 or 64 gets further, because it "
                  "makes many updates per epoch and each one is cheap; SGD makes the most updates but "
                  "its loss curve is noisy. I would default to minibatch SGD with B = 32.")


def stages(assignments):
    """(stage, student notebook, corpus module) for every built stage that has a corpus."""
    found = []
    for notebook in sorted(Path(assignments).glob("*/*.ipynb")):
        corpus = ROOT / "tests" / "corpus" / f"{notebook.stem}.py"
        if corpus.is_file():
            spec = importlib.util.spec_from_file_location(f"corpus_{notebook.stem}", corpus)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            found.append((notebook.parent.name, notebook, module))
    return found


def insert_after_check(nb, question, source, cell_id):
    """Insert a code cell right after the `grader.check(question)` cell."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f'grader.check("{question}")' in cell.source:
            new = nbformat.v4.new_code_cell(source)
            new.id = cell_id
            nb.cells.insert(i + 1, new)
            return nb
    raise ValueError(f"no grader.check({question!r}) cell")


def pick_bugs(corpus, count):
    """`count` mutants taken round-robin over the questions, in corpus order."""
    by_question = {q: [m for m in corpus.MUTANTS if m["question"] == q] for q in corpus.QUESTIONS}
    picked, depth = [], 0
    while len(picked) < count:
        row = [by_question[q][depth] for q in corpus.QUESTIONS if depth < len(by_question[q])]
        if not row:
            raise ValueError(f"the corpus has only {len(picked)} mutants, {count} wanted")
        picked += row
        depth += 1
    return picked[:count]


def first_alternatives(corpus):
    """One valid alternative per function (the first in corpus order)."""
    chosen = {}
    for entry in corpus.ALTERNATIVES:
        chosen.setdefault(entry["function"], entry)
    return list(chosen.values())


def sample_class(stage, student_path, corpus, other_notebook):
    """(questions, [(file name, notebook text, expected row)]) for one stage."""
    student = nbformat.read(student_path, as_version=4)
    regions = solution_regions(ROOT / "solutions" / stage / student_path.name)
    questions = list(corpus.QUESTIONS)
    solution = {f: text for f, (_, text) in regions.items()}
    short = student_path.stem
    half = questions[: max(1, len(questions) // 2)]
    rest = questions[len(half):]
    unanswered = {f: "..." for f, (q, _) in regions.items() if q in rest}
    subs = []

    def add(name, kind, about, nb, zero=(), entries=(), status=None):
        """One submission; expected outcomes: full, but `zero` questions and the entries' own."""
        expected = {q: "zero" if q in zero else "full" for q in questions}
        for entry in entries:
            expected[entry["question"]] = entry["expected"][entry["question"]]
        expected["status"] = status or ("cell-error" if kind in CELL_ERRORS.get(stage, ()) else "ok")
        expected["about"] = f"{kind}: {about}"
        text = nb if isinstance(nb, str) else nbformat.writes(nb) + "\n"
        subs.append((name, text, expected))

    def answered(entries=(), blank=None, written=None):
        """The student notebook with the solution everywhere, but the entries' regions (and edits) and `blank`."""
        return fill(student, {**solution, **(blank or {}), **{e["function"]: e["solution"] for e in entries}},
                    written, {f: pairs for e in entries for f, pairs in e.get("edits", {}).items()})

    full = answered(written=WRITTEN_ANSWER)
    add(f"{short.capitalize()}-FINAL-v3.ipynb", "full marks", "the solution", full)
    alternatives = first_alternatives(corpus)
    add(f"{short} (2).ipynb", "full marks", "other ways: " + ", ".join(e["name"] for e in alternatives),
        answered(alternatives, written=WRITTEN_ANSWER), entries=alternatives)
    add(f"jdoe_{short}.ipynb", "partial work", f"answered {', '.join(half)} only",
        answered(blank=unanswered), zero=rest)
    bugs = pick_bugs(corpus, 7)
    for name, bug in zip([f"asmith_{short}.ipynb", f"bwu-{short}.ipynb", f"tkim_{short}.ipynb",
                          f"{short}_final_FINAL.ipynb", f"kpatel_{short}_late.ipynb"], bugs):
        add(name, "bug", bug["name"], answered([bug]), entries=[bug])
    add(f"HW {short} submission.ipynb", "two bugs", f"{bugs[5]['name']}, {bugs[6]['name']}",
        answered(bugs[5:]), entries=bugs[5:])
    add(f"{short}.ipynb", "blank", "the notebook as handed out", student, zero=questions)
    text = nbformat.writes(full) + "\n"
    add(f"mgarcia_{short}.ipynb", "broken", "upload cut off mid-file", text[: len(text) * 3 // 5],
        zero=questions, status="invalid")
    # Named to sort first, so grading starts it first and its wait overlaps the others.
    add(f"Copy of {short}.ipynb", "hangs", f"an endless loop after {half[-1]}",
        insert_after_check(answered(blank=unanswered), half[-1], HANG, "sample-hang"), zero=rest, status="timeout")
    add(f"pnguyen_{short}.ipynb", "wrong stage", "another stage's notebook uploaded here", other_notebook,
        zero=questions, status="wrong-stage")
    return questions, subs


def expected_csv(questions, subs):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", *questions, "status", "about"])
    for name, _, expected in subs:
        writer.writerow([name, *[expected[q] for q in questions], expected["status"], expected["about"]])
    return buffer.getvalue()


def generate(assignments=ROOT / "assignments"):
    """{path: text} of the whole sample class."""
    found = stages(assignments)
    if not found:
        raise SystemExit("no built stage with a corpus: run `sgdkit build` first")
    files = {}
    for i, (stage, student_path, corpus) in enumerate(found):
        other = nbformat.read(found[(i + 1) % len(found)][1], as_version=4)
        questions, subs = sample_class(stage, student_path, corpus, other)
        for name, text, _ in subs:
            files[OUT / stage / name] = text
        files[OUT / stage / "EXPECTED.csv"] = expected_csv(questions, subs)
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that would change")
    parser.add_argument("--assignments", type=Path, default=ROOT / "assignments",
                        help="where `sgdkit build` wrote the student notebooks (default: assignments/)")
    args = parser.parse_args(argv)
    files = generate(args.assignments)
    stale = sorted(p for p in set(files) | set(OUT.glob("*/*"))
                   if not p.is_file() or p not in files or p.read_text(encoding="utf-8") != files[p])
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if stale else 0
    for path in stale:
        if path in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[path], encoding="utf-8")
        else:
            path.unlink()
    print(f"{len(files)} files under {OUT.relative_to(ROOT)}, {len(stale)} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
