"""Fixtures shared across the pipeline's tests."""
import fcntl
import shutil

import pytest

from attacks import STAGES
from autograder_root import build_venv, temp_base
from sgdkit import ASSIGNMENTS, SOLUTIONS, ZIPS
from sgdkit.build import build


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
