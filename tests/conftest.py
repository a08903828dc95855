"""Fixtures shared across the pipeline's tests."""
import fcntl
import shutil

import pytest

from attacks import STAGES
from autograder_root import build_venv, temp_base
from sgdkit import ASSIGNMENTS, SOLUTIONS, ZIPS
from sgdkit.build import build


# Files whose tests share an expensive fixture (a graded batch, a venv): `make test` runs pytest-xdist with
# --dist loadgroup, and each group stays on one worker, so the fixture runs once (the two files that fake an
# /autograder share one venv, autograder_venv). test_attacks.py grades a stage's attacks per group,
# test_isolation.py a mode; every other test goes wherever a worker is free.
SHARED_FIXTURES = {"test_grade.py": "grade", "test_demo.py": "demo", "test_build.py": "build",
                   "test_gradescope.py": "autograder venv", "test_otter_grade.py": "autograder venv"}
PER_PARAMETER = {"test_attacks.py": "stage", "test_isolation.py": "graded_mode"}


def pytest_collection_modifyitems(items):
    for item in items:
        name, params = item.path.name, getattr(getattr(item, "callspec", None), "params", {})
        if name in SHARED_FIXTURES:
            item.add_marker(pytest.mark.xdist_group(SHARED_FIXTURES[name]))
        elif name in PER_PARAMETER:
            value = params.get(PER_PARAMETER[name]) or getattr(params.get("attack"), "stage", None)
            if value:
                item.add_marker(pytest.mark.xdist_group(f"{name}:{value}"))


@pytest.fixture(scope="session")
def built_kit(tmp_path_factory):
    """The kit's own tree built (a no-op when up to date): the zips folder.

    Under pytest-xdist every worker asks for it: the first builds, holding a lock in the folder all workers'
    temp folders share, and the others then find the build up to date.
    """
    with open(tmp_path_factory.getbasetemp().parent / "built_kit.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build(SOLUTIONS, ASSIGNMENTS, ZIPS, log=lambda line: None)
    return ZIPS


@pytest.fixture(scope="session")
def autograder_venv(built_kit):
    """The zips' venv, installed once by their setup.sh, for every fake /autograder (tests/autograder_root.py)."""
    base = temp_base("sgdkit-venv-")
    try:
        yield build_venv(base, built_kit, STAGES)
    finally:
        shutil.rmtree(base, ignore_errors=True)
