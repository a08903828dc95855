"""The mutation audit: judge every mutant by the hidden checks, re-grade a sample for real, write MUTATION.md.

    .venv/bin/python tests/mutation/audit.py [--jobs 2] [--no-regrade]

Each mutant is typed into its region (every other region keeps the solution)
and judged in process, in a forked child with a time and memory limit, on
SEEDS. It is killed when its own question loses points on every seed;
otherwise it must be listed in tests/corpus/equivalent.md with a reason. Points
lost in another question (an isolation bug) and failing parts that change with
the seed are reported too. A sample of mutants is then graded by real
`sgdkit grade` and must fail the same parts. Exit status 1 on any of these.
"""
import argparse
import hashlib
import json
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from importlib.metadata import version
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "solutions")]

import checks  # noqa: E402
from mutation.inprocess import failing, student_env  # noqa: E402
from mutation.mutants import ROOT, all_mutants, equivalent_problems, equivalents, spread  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
TIMEOUT = 120.0  # seconds per mutant; the solution's whole stage takes about 1 s per seed
MEMORY = 4 << 30  # address space per child
REPORT = ROOT / "tests" / "corpus" / "MUTATION.md"
REGRADE_PER_STAGE = 8


def verdicts(mutant, seeds=SEEDS):
    """{"own": [failing parts of its question, per seed], "others": {question: failing parts}} of `mutant`."""
    env = student_env(mutant.stage, {mutant.function: mutant.text})
    own = [failing(mutant.question, env, seed) for seed in seeds]
    others = {q: failing(q, env, seeds[0]) for q in checks.STAGES[mutant.stage].QUESTIONS if q != mutant.question}
    return {"own": own, "others": {q: parts for q, parts in others.items() if parts}}


def run_forked(tasks, work, jobs, timeout=TIMEOUT):
    """{key: work(task)} for [(key, task)], each call in a forked child, `jobs` at a time.

    A child that runs past `timeout` is killed and gives {"timeout": timeout};
    one that dies gives {"died": its wait status}.
    """
    folder = tempfile.mkdtemp(prefix="mutants-")
    pending, running, results = list(tasks), {}, {}
    while pending or running:
        while pending and len(running) < jobs:
            key, task = pending.pop(0)
            path = os.path.join(folder, f"{len(results) + len(running)}.json")
            pid = os.fork()
            if pid == 0:
                _child(work, task, path)
            running[pid] = [key, path, time.monotonic() + timeout, False]
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            key, path, _, killed = running.pop(pid)
            result = _read(path)
            results[key] = {"timeout": timeout} if killed else {"died": status} if result is None else result
            continue
        for pid, entry in running.items():
            if not entry[3] and time.monotonic() > entry[2]:
                os.kill(pid, signal.SIGKILL)
                entry[3] = True
        time.sleep(0.005)
    return results


def _child(work, task, path):
    """In a forked child: work(task), or the error it raised, as JSON into `path`; then exit at once."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # whatever the mutant prints
        try:
            result = work(task)
        except Exception:
            result = {"error": traceback.format_exc()[-2000:]}
        Path(path + ".part").write_text(json.dumps(result))
        os.replace(path + ".part", path)
    finally:
        os._exit(0)  # never the parent's cleanup (atexit, pytest) in a fork


def _read(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def classify(mutant, result, listed):
    """'killed', 'equivalent', 'survived' or 'unstable' (killed on some seeds only)."""
    if "own" not in result:
        return "killed"  # timed out or died (in `sgdkit grade` its question scores 0), or an error reported apart
    kills = [bool(parts) for parts in result["own"]]
    if all(kills):
        return "killed"
    if any(kills):
        return "unstable"
    return "equivalent" if mutant.id in listed else "survived"


def regrade_sample(mutants, outcomes, results):
    """REGRADE_PER_STAGE mutants per stage: live ones first, then the killed ones that fail the fewest parts."""
    def subtle(m):  # ties broken by hash: a fixed sample that does not follow the notebook's order
        return len(results[m.id]["own"][0]), hashlib.sha256(m.id.encode()).hexdigest()

    chosen = []
    for stage in checks.STAGES:
        ok = [m for m in mutants if m.stage == stage and "own" in results[m.id]]
        live = sorted((m for m in ok if outcomes[m.id] != "killed"), key=subtle)[:REGRADE_PER_STAGE // 2]
        killed = sorted((m for m in ok if outcomes[m.id] == "killed"), key=subtle)
        chosen += live + killed[:REGRADE_PER_STAGE - len(live)]
    return chosen


def regrade(sample, jobs):
    """[(mutant, fast path's failing parts, sgdkit grade's failing parts, status)], at grade's own seeds."""
    import nbformat
    from sgdkit import SOLUTIONS
    from sgdkit.answers import fill, solution_regions
    from sgdkit.build import build
    from sgdkit.grade import grade
    from sgdkit.results import status_text

    tmp = Path(tempfile.mkdtemp(prefix="mutants-grade-"))
    stages = sorted({m.stage for m in sample})
    # A build of our own: the shared tree may be mid-edit, and the scores of the solution are not in question here.
    build(SOLUTIONS, tmp / "assignments", tmp / "zips", stages=stages, verify_scores=False, log=lambda line: None)
    rows = []
    for stage in stages:
        student_path = next((tmp / "assignments" / stage).glob("*.ipynb"))
        solution = {f: text for f, (_, text) in solution_regions(SOLUTIONS / stage / student_path.name).items()}
        student = nbformat.read(student_path, as_version=4)
        inbox = tmp / "inbox" / stage
        inbox.mkdir(parents=True)
        mine = {m.id.replace("#", "-") + ".ipynb": m for m in sample if m.stage == stage}
        for name, m in mine.items():
            (inbox / name).write_text(nbformat.writes(fill(student, {**solution, m.function: m.text})))
        graded = grade([inbox], stage, tmp / "out" / stage, workers=jobs, zips=tmp / "zips")
        real = {r["file"]: r for r in graded}
        tasks = [(name, (m, real[name]["seed"])) for name, m in mine.items()]
        fast = run_forked(tasks, lambda task: _all_failing(*task), jobs)
        for name, m in mine.items():
            got = {q: sorted(t["name"] for t in r["tests"] if t["hidden"] and not t["passed"])
                   for q, r in real[name]["questions"].items()}
            rows.append((m, fast[name], {q: parts for q, parts in got.items() if parts}, status_text(real[name])))
    return rows


def _all_failing(mutant, seed):
    """{question: failing parts} of every question of the mutant's stage that loses points, at `seed`."""
    env = student_env(mutant.stage, {mutant.function: mutant.text})
    found = {q: failing(q, env, seed) for q in checks.STAGES[mutant.stage].QUESTIONS}
    return {q: parts for q, parts in found.items() if parts}


def report(mutants, outcomes, results, listed, problems, rows, seconds):
    """The text of MUTATION.md."""
    lines = [
        "# Mutation audit",
        "",
        f"Written by `make mutants` (tests/mutation/audit.py). Mutants: mutmut {version('mutmut')}'s operators,",
        "each applied alone to one exercise region (a master notebook's SOLUTION region; the library's",
        "EXERCISE blocks are the same text). Judged by the hidden checks in process, as `sgdkit grade`",
        f"judges, on seeds {', '.join(map(str, SEEDS))}: killed means its own question loses points on every",
        "seed, the same parts on each; equivalent means full marks, and listed with its reason in",
        "[equivalent.md](equivalent.md).",
        "",
    ]
    lines += _table(mutants, outcomes)
    counts = ", ".join(f"{q} {n}" + (" (over a third)" if 3 * n > len(listed) else "")
                       for q, n in spread(mutants, listed).items())
    lines += ["", f"{len(mutants)} mutants, judged in {seconds:.0f} s. Equivalents per question: {counts}.", ""]
    lines += _findings(mutants, outcomes, results, problems)
    return "\n".join(lines + (_agreement(rows, outcomes) if rows else [])) + "\n"


def _table(mutants, outcomes):
    """The per-stage table's lines."""
    lines = ["| stage | mutants | killed | equivalent (listed) | survived | killed of non-equivalent |",
             "| --- | --- | --- | --- | --- | --- |"]
    for stage in checks.STAGES:
        mine = [outcomes[m.id] for m in mutants if m.stage == stage]
        killed, equivalent = mine.count("killed"), mine.count("equivalent")
        live = len(mine) - killed - equivalent
        rate = f"{100 * killed / (killed + live):.1f}%" if killed + live else "-"
        lines.append(f"| {stage} | {len(mine)} | {killed} | {equivalent} | {live} | {rate} |")
    return lines


def _findings(mutants, outcomes, results, problems):
    """One section per kind of finding, each saying "None." when there is none."""
    def each(keep, say):
        return [f"- `{m.id}`: `{m.change}`{say(m, results[m.id])}" for m in mutants if keep(m, results[m.id])]

    return (
        _section("Survivors, unexplained", each(
            lambda m, r: outcomes[m.id] in ("survived", "unstable"), lambda m, r: f" ({outcomes[m.id]})"))
        + _section("Failing parts that depend on the seed", each(
            lambda m, r: _seed_dependent(r), lambda m, r: f" fails {sorted(set(map(tuple, r['own'])))}"))
        + _section("Points lost in another question (isolation)", each(
            lambda m, r: r.get("others"), lambda m, r: f" fails {r['others']}"))
        + _section("Timeouts and crashes (scored 0 by `sgdkit grade`)", each(
            lambda m, r: "timeout" in r or "died" in r, lambda m, r: f": {r}"))
        + _section("Errors of the audit itself", each(lambda m, r: "error" in r, lambda m, r: f": {r['error']}"))
        + _section("Problems with equivalent.md", [f"- {p}" for p in problems])
    )


def _agreement(rows, outcomes):
    """The lines comparing the in-process verdicts with real grading."""
    agree = sum(fast == real for _, fast, real, _ in rows)
    return [f"## Real grading agrees: {agree} of {len(rows)}", "",
            "Each sampled mutant was graded by `sgdkit grade` (sandbox, probes, otter scoring) and judged",
            "in process at the seed the grader drew for it; both list the same failing parts.", "",
            "| mutant | outcome | change | failing parts (in process) | failing parts (sgdkit grade) | status |",
            "| --- | --- | --- | --- | --- | --- |"] + [
        f"| `{m.id}` | {outcomes[m.id]} | `{_cell(m.change)}` | {_parts(fast)} | {_parts(real)} | {status} |"
        for m, fast, real, status in rows]


def _seed_dependent(result):
    """Did the mutant's question fail different parts on different seeds?"""
    return len({tuple(parts) for parts in result.get("own", [])}) > 1


def _section(title, items):
    return [f"## {title}: {len(items)}", ""] + (items + [""] if items else ["None.", ""])


def _cell(text):
    return text.replace("|", "\\|")


def _parts(found):
    return "; ".join(f"{q}: {', '.join(parts)}" for q, parts in found.items()) or "none"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-regrade", action="store_true", help="skip the real-grading sample")
    args = parser.parse_args(argv)
    start = time.monotonic()
    mutants, listed = all_mutants(), equivalents()
    results = run_forked([(m.id, m) for m in mutants], verdicts, args.jobs)
    outcomes = {m.id: classify(m, results[m.id], listed) for m in mutants}
    problems = equivalent_problems(mutants, listed)
    problems += [f"{i}: listed, but killed" for i in listed if outcomes.get(i) == "killed"]
    seconds = time.monotonic() - start
    rows = [] if args.no_regrade else regrade(regrade_sample(mutants, outcomes, results), args.jobs)
    REPORT.write_text(report(mutants, outcomes, results, listed, problems, rows, seconds))
    bad = [m.id for m in mutants if outcomes[m.id] in ("survived", "unstable") or results[m.id].get("others")
           or _seed_dependent(results[m.id]) or "error" in results[m.id]]
    bad += problems + [m.id for m, fast, real, _ in rows if fast != real]
    print(f"{len(mutants)} mutants in {seconds:.0f} s; wrote {REPORT.relative_to(ROOT)}; {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
