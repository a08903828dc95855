"""Run `sgdkit build`: each stage through STEPS, from solutions/ to assignments/<stage>/ and autograder/zips/.

Each stage goes through STEPS in a temp folder of its own; only `publish`
writes into the repository, so a build that fails leaves assignments/ as it
was. A stage whose inputs and outputs still match its stamp is skipped.
`--check` builds into a temp folder instead and lists what differs.

autograder/zips/ then holds, per stage: <stage>.zip (otter's autograder),
<stage>-solution.ipynb, and <stage>.json, read by `sgdkit grade`:
{"stage", "notebook", "questions": [{"name", "points", "manual"}, ...],
"solution_seconds"} (questions in notebook order; points of manual questions
come from their question config).
"""
import argparse
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import ASSIGNMENTS, ROOT, SOLUTIONS, ZIPS
from .assign import BuildJob, assign_env, run_assign, write_library, write_student
from .leaks import check_leaks, library_answer_leaks
from .package import GRADESCOPE, PYPROJECT, pinned_requirements, write_autograder, write_if_changed
from .sources import (STAGE_FOLDER, BuildError, Master, StageSource, exercises, find_stages, library_files,
                      owners_of, parse_master)
from .verify import verify

log = logging.getLogger(__name__)

# The steps in order; `publish` follows them, after verify (which measures the
# solution's run time for the summary), so nothing unverified is published.
STEPS: list[tuple[str, Callable[[BuildJob], None]]] = [
    ("library", write_library),
    ("assign", run_assign),
    ("student", write_student),
    ("leaks", check_leaks),
    ("verify", verify),
]


def publish(job: BuildJob, assignments: Path, zips: Path) -> None:
    """Write assignments/<stage>/ (removing stale files) and autograder/zips/<stage>.*."""
    assert job.view is not None  # write_student, a step before publish, sets it
    sync(job.view, assignments / job.stage.name)
    write_autograder(job, zips)
    write_if_changed(zips / f"{job.stage.name}-solution.ipynb", job.solution.read_bytes())


def sync(source: Path, dest: Path) -> None:
    """Make `dest` hold exactly the files of `source`."""
    wanted = {p.relative_to(source) for p in source.rglob("*") if p.is_file()}
    if dest.exists():
        for path in sorted(dest.rglob("*"), reverse=True):  # children before their folders
            rel = path.relative_to(dest)
            if path.is_file() and rel not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for rel in sorted(wanted):
        write_if_changed(dest / rel, (source / rel).read_bytes())


# Up to date ---------------------------------------------------------------


def stage_inputs(stage: StageSource, stages: list[StageSource], masters: dict[str, Master], solutions: Path) -> str:
    """A hash of what one stage's outputs are made from.

    That is its own folder, the library, the checks and (through `kit_inputs`)
    the kit, which makes the outputs and is packed in the zip; of the other
    masters only which stage asks which question, since the library copy stubs
    or fills in each exercise by that and names the notebook that asks it.
    """
    layout = [[s.name, s.notebook, [q.name for q in masters[s.name].questions]] for s in stages]
    own = _tree_hash([stage.master.parent, solutions / "match", solutions / "checks"])
    return hashlib.sha256(f"{own}\0{json.dumps(layout)}\0{kit_inputs()}".encode()).hexdigest()


def _files(top: Path) -> dict[str, Path]:
    """{posix path under `top`: file} of the files at or under `top` (none if it is missing), caches left out."""
    files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()) if top.exists() else []
    found = {path.relative_to(top).as_posix(): path for path in files}
    return {rel: path for rel, path in found.items() if not {"__pycache__", ".ipynb_checkpoints"} & set(rel.split("/"))}


def _tree_hash(paths: list[Path]) -> str:
    """sha256 over the names and bytes of the files at or under `paths` (a missing path counts too)."""
    digest = hashlib.sha256()
    for top in paths:
        files = _files(top)
        digest.update(f"{top.name}:{len(files)}\0".encode())
        for rel, path in files.items():
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _outputs(stage: StageSource, assignments: Path, zips: Path) -> list[Path]:
    return [assignments / stage.name, zips / f"{stage.name}.zip", zips / f"{stage.name}.json",
            zips / f"{stage.name}-solution.ipynb"]


def _stamp(stage: StageSource, inputs: str, assignments: Path, zips: Path) -> str:
    """What the stamp file holds after a good build: hashes of the inputs and of the outputs."""
    outputs = _outputs(stage, assignments, zips)
    return json.dumps({"inputs": inputs, "outputs": _tree_hash(outputs)}) + "\n"


def _up_to_date(stage: StageSource, inputs: str, assignments: Path, zips: Path) -> bool:
    stamp = zips / f"{stage.name}.stamp"
    outputs = _outputs(stage, assignments, zips)
    return (stamp.is_file() and all(p.exists() for p in outputs)
            and stamp.read_text() == _stamp(stage, inputs, assignments, zips))


def _orphans(assignments: Path, names: list[str]) -> list[Path]:
    """Stage folders under assignments/ that a build made (their notebook says so) but no master makes now."""
    if not assignments.is_dir():
        return []
    found = []
    for folder in sorted(p for p in assignments.iterdir() if p.is_dir() and p.name not in names):
        for notebook in folder.glob("*.ipynb"):
            try:
                generated = "sgdkit" in json.loads(notebook.read_text()).get("metadata", {})
            except (ValueError, UnicodeDecodeError):
                generated = False
            if generated and STAGE_FOLDER.fullmatch(folder.name):
                found.append(folder)
                break
    return found


def kit_inputs() -> str:
    """A hash of the kit, which writes every output and is packed in every zip: its code, Gradescope setup, pins."""
    sources = _tree_hash([Path(__file__).parent, GRADESCOPE, PYPROJECT])
    return hashlib.sha256(f"{sources}\0{pinned_requirements()}".encode()).hexdigest()


# The build -------------------------------------------------------------------


def build(solutions: Path = SOLUTIONS, assignments: Path = ASSIGNMENTS, zips: Path = ZIPS, *,
          stages: list[str] | None = None, force: bool = False, verify_scores: bool = True,
          log: Callable[[str], None] = print) -> dict[str, BuildJob | None]:
    """Build the stages (all, or those named) in parallel: {stage: its BuildJob, or None if up to date}.

    A stage is rebuilt when `stage_inputs` changed; an up-to-date stage still
    gets the leak check. `verify_scores=False` skips grading the solution and
    the blank (the kit's tests use it to rebuild cheaply); the summary then has
    no solution_seconds.
    """
    found = find_stages(solutions)
    names = [s.name for s in found]
    unknown = sorted(set(stages or []) - set(names))
    if unknown:
        raise BuildError(f"no stage {', '.join(unknown)} under {solutions} (stages: {', '.join(names)})")
    masters = {s.name: parse_master(s) for s in found}
    library = library_files(solutions / "match")
    owners = owners_of(masters)  # fails early on a question asked twice
    for question, blocks in exercises(library).items():
        if question not in owners:
            log(f"warning: {blocks[0].where}: exercise {question} is no question of any master notebook, "
                "so every stage gets it as a stub")
    leaks = library_answer_leaks(library, masters)
    if leaks:
        raise BuildError("answer lines would reach students:\n  " + "\n  ".join(leaks))
    inputs = {s.name: stage_inputs(s, found, masters, solutions) for s in found}
    lock = threading.Lock()

    def say(stage: str, text: str) -> None:
        with lock:
            log(f"{stage:<16}{text}")

    def one(stage: StageSource, work: Path) -> BuildJob | None:
        if not force and _up_to_date(stage, inputs[stage.name], assignments, zips):
            # Another master's edit can make a line of this folder secret: the leak check is cheap, so it runs.
            try:
                check_leaks(BuildJob(stage, found, masters, library, solutions, work, view=assignments / stage.name))
            except BuildError as error:
                raise BuildError(f"{stage.name}: leaks: {error}") from None
            say(stage.name, "up to date")
            return None
        job = BuildJob(stage, found, masters, library, solutions, work, assign_env(work, masters[stage.name].kernel))
        steps = STEPS if verify_scores else [s for s in STEPS if s[0] != "verify"]
        for name, step in steps + [("publish", lambda j: publish(j, assignments, zips))]:
            start = time.perf_counter()
            try:
                step(job)
            except BuildError as error:
                raise BuildError(f"{stage.name}: {name}: {error}") from None
            say(stage.name, f"{name:<9}{time.perf_counter() - start:6.1f} s")
        if verify_scores:  # an unverified build must not pass for up to date
            (zips / f"{stage.name}.stamp").write_text(_stamp(stage, inputs[stage.name], assignments, zips))
        return job

    todo = [s for s in found if not stages or s.name in stages]
    if not stages:
        for folder in _orphans(assignments, names):
            shutil.rmtree(folder)
            say(folder.name, "removed: no master notebook in solutions/ any more")
    with tempfile.TemporaryDirectory(prefix="sgdkit-build-") as temp:
        with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
            futures = {s.name: pool.submit(one, s, Path(temp) / s.name) for s in todo}
        for future in futures.values():
            error = future.exception()
            if error is not None and not isinstance(error, BuildError):
                raise error
        errors = [str(f.exception()) for f in futures.values() if f.exception()]
        if errors:
            raise BuildError("\n".join(errors))
        return {name: future.result() for name, future in futures.items()}


def check(solutions: Path = SOLUTIONS, assignments: Path = ASSIGNMENTS, zips: Path = ZIPS, *,
          stages: list[str] | None = None, log: Callable[[str], None] = print) -> list[str]:
    """What a build would change: one line per file of `assignments` that differs from a fresh build, naming it.

    The stages (all, or those named) are built from scratch into a temp folder
    and their folders compared byte for byte, so a hand edit of a generated
    file and a source edited without a rebuild both show; stamps are not
    trusted. Grading the solution is skipped: it writes none of these files.
    zips/<stage>.json is compared too, without its measured run time, where it
    exists (zips/ is git-ignored, so a fresh clone has none).
    """
    with tempfile.TemporaryDirectory(prefix="sgdkit-check-") as temp:
        fresh = Path(temp)
        jobs = build(solutions, fresh / "assignments", fresh / "zips", stages=stages, force=True,
                     verify_scores=False, log=lambda line: log(line) if line.startswith("warning") else None)
        stale = [f"{_shown(folder)}/: no master notebook makes this stage any more"
                 for folder in ([] if stages else _orphans(assignments, list(jobs)))]
        for name in jobs:
            new, old = _files(fresh / "assignments" / name), _files(assignments / name)
            for rel in sorted(new.keys() | old.keys()):
                why = ("not made by the build" if rel not in new else "missing" if rel not in old
                       else "differs" if new[rel].read_bytes() != old[rel].read_bytes() else None)
                if why:
                    stale.append(f"{_shown(assignments / name / rel)}: {why}")
            summary = zips / f"{name}.json"
            if summary.is_file() and _summary(summary) != _summary(fresh / "zips" / f"{name}.json"):
                stale.append(f"{_shown(summary)}: differs")
    return stale


def _summary(path: Path) -> dict[str, Any]:
    """A zips/<stage>.json without its measured run time."""
    summary = json.loads(path.read_text())
    summary.pop("solution_seconds", None)
    return summary


def _shown(path: Path) -> str:
    """`path` as a user names it: relative to the kit's checkout when inside it."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sgdkit build`."""
    parser.add_argument("--force", action="store_true", help="rebuild even when solutions/ has not changed")
    parser.add_argument("--stage", action="append", metavar="STAGE",
                        help="build only this stage (repeatable), e.g. 01-losses")
    parser.add_argument("--check", action="store_true",
                        help="write nothing: build into a temp folder and exit 1, listing the files, "
                             "if assignments/ differs from it")


def main(args: argparse.Namespace) -> int:
    """Run `sgdkit build`, or with --check only compare."""
    start = time.perf_counter()
    try:
        if args.check:
            stale = check(stages=args.stage)
        else:
            jobs = build(stages=args.stage, force=args.force)
    except BuildError as error:
        log.error("%sfailed: %s", "--check " * args.check, error)
        return 1
    seconds = time.perf_counter() - start
    if args.check and stale:
        log.error("--check: these files are not what `sgdkit build` writes from solutions/ now "
                  "(run it and commit the result):\n  %s", "\n  ".join(stale))
        return 1
    if args.check:
        print(f"assignments/ is what `sgdkit build` writes from solutions/ (checked in {seconds:.1f} s)")
        return 0
    built = [name for name, job in jobs.items() if job]
    print(f"built {len(built)} of {len(jobs)} stages in {seconds:.1f} s" if built else "up to date")
    return 0
