"""Does the tooling stay a house a new maintainer can live in: small modules, each naming its one job?"""
import ast

import pytest

from sgdkit import ROOT

MODULES = sorted((ROOT / "autograder" / "sgdkit").glob("*.py"))
MAX_LINES = 400


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_is_small_and_names_its_job(path):
    """Is the module at most MAX_LINES long, with a docstring whose first line is one sentence?"""
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name}: split it along its sections"
    doc = ast.get_docstring(ast.parse(text))
    first = (doc or "").splitlines()[0] if doc else ""
    assert first.endswith(".") and len(first) <= 120, f"{path.name}: its docstring's first line names its job"


def test_nothing_parses_a_status_text():
    """Does no module split a status apart? The keyword is result["status"], the why result["detail"]."""
    found = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("split", "partition", "startswith") \
                    and "status" in ast.unparse(node.func.value):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
