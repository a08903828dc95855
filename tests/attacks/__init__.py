"""The attack corpus: submissions built to earn points they did not, each graded by real `sgdkit grade`.

Every attack starts from a stage's BLANK student notebook (nothing solved) and
adds what a determined student would. Each module here holds one class of
attack and exports ATTACKS, a list of Attack; tests/test_attacks.py grades every
attack of a stage in one batch and requires each to earn 0 points. An attack is
written so that it WOULD pay if its defence were missing (its `pays` line says
how), so a 0 means the defence held, not that the attack was harmless.
"""
import copy
import json
from dataclasses import dataclass, field
from typing import Callable

STAGES = ["01-losses", "02-descent", "03-tradeoffs"]
# Attacks on guarantees that the mode "no namespaces, as root" (Docker: Gradescope, `otter grade`) does not
# give (the README's modes table): they may pay there. Every other attack must earn 0 there too.
NOT_WITHOUT_NAMESPACES = {
    "host-disk-past-cap": "no total disk cap without namespaces (each file is still capped)",
    "host-read-others": "host files are not hidden without namespaces: it reads this machine's checkout of the "
                        "kit, which a grading image does not hold (its only copy is the root-only source/)",
}


@dataclass
class Attack:
    """One hostile submission: `file` is its name in the inbox, `make(blank)` its bytes."""

    file: str
    stage: str
    make: Callable[[dict], bytes]  # the blank notebook (parsed JSON) -> the file's bytes
    pays: str  # how it would earn points if its defence were missing
    status: str | None = None  # the status keyword it must get, when one is certain
    extra: dict = field(default_factory=dict)  # anything a test wants to check besides the 0


def all_attacks():
    """Every attack of every module here (imported on call: the modules import this one)."""
    import importlib
    import pkgutil

    return [a for info in pkgutil.iter_modules(__path__)
            for a in importlib.import_module(f"{__name__}.{info.name}").ATTACKS]


def with_cells(*sources, at=None):
    """A `make` that adds code cells to the blank notebook (at the end, or before cell index `at`)."""

    def make(blank):
        nb = copy.deepcopy(blank)
        cells = [{"cell_type": "code", "execution_count": None, "id": f"attack{i}", "metadata": {},
                  "outputs": [], "source": source} for i, source in enumerate(sources)]
        where = len(nb["cells"]) if at is None else at
        nb["cells"][where:where] = cells
        return json.dumps(nb).encode()

    return make


def every_stage(file, sources, pays, **options):
    """The same cells as an attack on each stage, named `<stage>-<file>`."""
    return [Attack(f"{stage}-{file}", stage, with_cells(*sources), pays, **options) for stage in STAGES]
