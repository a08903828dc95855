"""`sgdkit grade`: a folder of submitted notebooks -> DIR/grades.csv, DIR/results/, DIR/feedback/.

No student code runs in this process. Per submission:

1. read  -- submissions.py takes the notebook (out of an otter export zip if need
            be; never its .OTTER_LOG or shipped folders), parses and validates it,
            and checks its stage;
2. run   -- batch.py starts sandbox.py on it in an isolated child (isolation.py:
            own uid, namespaces, caps) that executes it and probes each question
            with inputs drawn here from a per-submission seed; it answers in
            JSON, never pickle;
3. score -- scoring.py turns the events into a status and, with the stage's
            trusted judge (stage.py) and otter's ExceptionTestFile, each question's points;
4. write -- outputs.py: feedback/<name>.md and results/<name>.json (a failed
            write is that row's status), then grades.csv.

This module is the verb: its arguments, and `grade()`, which runs one batch.
"""
import logging
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Iterable

import psutil
from tqdm import tqdm

from . import ZIPS, isolation
from .batch import DISK, GIB, PROCESSES, Batch, Settings
from .feedback import save_result, summary_line, write_grades
from .results import Result, read_result
from .stage import Stage, load_stage
from .submissions import file_sha256, find_submissions

log = logging.getLogger(__name__)
# Bump when grading changes in a way that should invalidate stored results.
GRADER_VERSION = "2"  # 2: a result's status is its keyword, with the text in `detail`


def add_arguments(parser: Any) -> None:
    parser.add_argument("--stage", required=True, help="stage to grade, e.g. 01-losses")
    parser.add_argument("--out", required=True, type=Path, help="folder for grades.csv, results/ and feedback/")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="submitted notebooks (.ipynb or otter export .zip) or folders of them")
    parser.add_argument("--workers", type=int, default=None, help="submissions graded at once (default: cores)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to run one notebook (default: from the solution's run time, generous)")
    parser.add_argument("--memory", default=None,
                        help="memory cap for all of a submission's processes together, e.g. 2G or 512M "
                             "(default: min(4G, RAM / workers))")
    parser.add_argument("--disk", default=None,
                        help=f"disk cap for all the files a submission writes (default: {DISK >> 30}G)")
    parser.add_argument("--processes", type=int, default=None,
                        help=f"process cap for a submission, threads included (default: {PROCESSES})")
    parser.add_argument("--no-namespaces", action="store_true",
                        help=f"isolate without Linux namespaces, as where unshare is refused (also: {isolation.OFF}=1)")
    parser.add_argument("--seed", type=int, default=0, help="base of the per-submission seeds (default 0)")
    parser.add_argument("--force", action="store_true",
                        help="regrade submissions that already have results (a rerun skips those graded with the "
                             "same file, autograder zip and seed; use --force after changing --timeout or --memory)")
    parser.add_argument("--compare", type=Path, default=None, metavar="OLD",
                        help="regrade preview: an earlier grades.csv (or its folder); writes DIR/changes.csv and "
                             "prints every student whose score would change")


def main(args: Any) -> int:
    from . import compare
    try:
        # Read the old grades first: the new grading may overwrite that very folder.
        old = compare.load(args.compare) if args.compare else None
        results = grade(args.paths, args.stage, args.out, workers=args.workers, timeout=args.timeout,
                        memory=parse_size(args.memory) if args.memory else None, seed=args.seed,
                        force=args.force, disk=parse_size(args.disk, "--disk") if args.disk else None,
                        processes=args.processes, namespaces=False if args.no_namespaces else None)
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; finished submissions are saved, rerun to continue")
        return 130
    print(summary_line(results, Path(args.out)))
    if old is not None:
        compare.preview(old, args.out)
    return 0


def default_timeout(spec: Stage) -> float:
    """Generous: five times the solution's run time plus half a minute, at least a minute."""
    if spec.solution_seconds is None:
        return 300.0
    return max(60.0, 5 * spec.solution_seconds + 30)


def parse_size(text: str, option: str = "--memory") -> int:
    """'4G', '512M', '1.5g' or a number of bytes -> bytes."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([kKmMgG]?)i?[bB]?\s*", str(text))
    if not m:
        raise ValueError(f"{option} {text!r}: expected a size such as 4G or 512M")
    return int(float(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": GIB}[m.group(2).lower()])


def grade(paths: Iterable[Path | str], stage: str, out_dir: Path | str, *, workers: int | None = None,
          timeout: float | None = None, memory: int | None = None, seed: int = 0, force: bool = False,
          zips: Path | str = ZIPS, progress: bool | None = None, disk: int | None = None,
          processes: int | None = None, namespaces: bool | None = None) -> list[Result]:
    """Grade the submissions at `paths` for `stage` into `out_dir`; return their results in file order.

    namespaces=False grades without Linux namespaces (as SGDKIT_NO_NAMESPACES=1 does); True requires them.
    """
    spec = load_stage(stage, zips)
    subs = find_submissions(paths)
    workers = max(1, workers or os.cpu_count() or 1)
    timeout = timeout or default_timeout(spec)
    settings = Settings(timeout, max(30.0, timeout / 2),
                        memory or min(4 * GIB, psutil.virtual_memory().total // workers), seed,
                        disk or DISK, processes or PROCESSES, namespaces)
    out = Path(out_dir)
    for folder in ("results", "feedback"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    grader_id = f"{GRADER_VERSION}:{spec.zip_sha[:16]}:{seed}"

    results: dict[str, Result] = {}
    todo = []
    for sub in subs:
        digest = file_sha256(sub.path)
        old = read_result(out, sub.file)
        if not force and old and old.get("sha256") == digest and old.get("grader") == grader_id:
            results[sub.file] = old
        else:
            todo.append((sub, digest))

    bar = tqdm(total=len(subs), initial=len(subs) - len(todo), desc="grading", unit="notebook", file=sys.stderr,
               disable=not (sys.stderr.isatty() if progress is None else progress))
    not_ok = 0
    with Batch(spec, settings) as batch:
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = {pool.submit(batch.grade_one, sub, digest): sub for sub, digest in todo}
            for future in as_completed(futures):
                result = future.result()
                result["grader"] = grader_id
                save_result(out, result, spec)  # a write that fails is this row's status, not the batch's end
                results[result["file"]] = result
                not_ok += result["status"] != "ok"
                bar.set_postfix({"not ok": not_ok}, refresh=False)
                bar.update()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            batch.stop()
            raise
        pool.shutdown()
    bar.close()
    ordered = [results[s.file] for s in subs]
    write_grades(out / "grades.csv", spec, ordered)
    return ordered
