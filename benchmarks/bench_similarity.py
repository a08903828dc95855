"""How long does `sgdkit similarity` take on a big class, and does it still separate copies from honest work?

Measures, for stage 02-descent:
  sample     the bundled sample class (examples/sample-class/02-descent);
  generated  a generated class of --students notebooks, --pairs of them disguised copies
             (examples/similar_class.py), with 1 and with 2 worker processes.
Each time is the median of --repeat runs of the whole verb (reading, fingerprinting,
scoring, writing similarity.csv and .json), with the CPU seconds it used (which, unlike
the wall time, other jobs on a shared machine do not inflate much). For the generated class it also reports
where the planted pairs rank and the highest honest score. Appends a dated table to
benchmarks/RESULTS.md. Target (issue 19): 600 submissions in under 60 s on 2 cores.
"""
import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from sgdkit import ROOT
from sgdkit.similarity import THRESHOLD, ranked, read_answers, similarity

STAGE = "02-descent"
RESULTS = Path(__file__).with_name("RESULTS.md")


def generated_class(students, pairs, seed, folder):
    """Write the generated class into `folder`; its planted (copy, source) pairs."""
    spec = importlib.util.spec_from_file_location("similar_class", ROOT / "examples" / "similar_class.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files, planted = module.generate(students, pairs, seed)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [frozenset((copy, source)) for copy, source, _ in planted]


def cpu():
    """CPU seconds of this process and its finished children (the worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(paths, workers, repeat, scratch):
    """(median wall seconds of the whole verb, median CPU seconds, the last run's JSON)."""
    seconds, used, data = [], [], None
    for _ in range(repeat):
        out = Path(tempfile.mkdtemp(dir=scratch))
        start, busy = time.perf_counter(), cpu()
        data = similarity(paths, STAGE, out, workers=workers)
        seconds.append(time.perf_counter() - start)
        used.append(cpu() - busy)
    return statistics.median(seconds), statistics.median(used), data


def separation(folder, planted):
    """(worst rank of a planted pair, 1 = top; lowest planted score; highest honest score)."""
    answers, _ = read_answers([folder], STAGE)
    found, _ = ranked(answers, 0.4)  # pairs whose bound is under 0.4 score under it
    keys = [frozenset((answers[i].file, answers[j].file)) for _, i, j in found]
    planted_at = [rank for rank, key in enumerate(keys, start=1) if key in planted]
    honest = [v for (v, _, _), key in zip(found, keys) if key not in planted]
    return max(planted_at), min(v for (v, _, _), key in zip(found, keys) if key in planted), max(honest + [0.0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=600)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "class"
        folder.mkdir()
        planted = set(generated_class(args.students, args.pairs, args.seed, folder))
        sample, _, sample_data = timed([ROOT / "examples" / "sample-class" / STAGE], None, args.repeat, scratch)
        one, one_cpu, _ = timed([folder], 1, args.repeat, scratch)
        two, two_cpu, data = timed([folder], 2, args.repeat, scratch)
        worst, lowest, honest = separation(folder, planted)
    flagged = {frozenset((p["file_a"], p["file_b"])) for p in data["pairs"]}
    load = os.getloadavg()[0]
    rows = [
        ("sample class (13 notebooks)", f"{sample:.2f} s",
         f"{sample_data['compared']} compared, {len(sample_data['pairs'])} pairs flagged"),
        (f"generated class ({args.students}), 1 worker", f"{one:.2f} s", f"{one_cpu:.1f} s of CPU"),
        (f"generated class ({args.students}), 2 workers", f"{two:.2f} s", f"{two_cpu:.1f} s of CPU; target < 60 s"),
        ("planted pairs flagged", f"{len(flagged & planted)} of {len(planted)}",
         f"honest pairs flagged: {len(flagged - planted)}"),
        ("planted pairs' worst rank", str(worst), f"lowest planted score {lowest:.3f}, "
                                                  f"highest honest {honest:.3f}, threshold {THRESHOLD}"),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    section = (f"\n## {date.today().isoformat()} — similarity, {STAGE}, {os.cpu_count()} cores, median of "
               f"{args.repeat}, seed {args.seed} (load average {load:.1f} at the end)\n\n"
               f"| what | figure | note |\n| --- | --- | --- |\n{table}\n")
    print(section)
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write(section)


if __name__ == "__main__":
    main()
