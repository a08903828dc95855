"""A master notebook's answer cells run in process, some SOLUTION regions replaced: the tests' "student"."""
import re
import textwrap

import nbformat
from sgdkit.answers import solution_regions

REGION = re.compile(r"^( *)# BEGIN SOLUTION\n.*?^ *# END SOLUTION\n?", re.M | re.S)
MARKER = re.compile(r"^ *# (BEGIN|END) SOLUTION\n?", re.M)


def code_cells(master):
    """The sources of the notebook's code cells, in order."""
    return [cell.source for cell in nbformat.read(master, as_version=4).cells if cell.cell_type == "code"]


def region_texts(master):
    """{function: its dedented SOLUTION region} of the notebook."""
    return {name: text for name, (question, text) in solution_regions(master).items()}


def answer_cells(master):
    """{function: source of the code cell defining it}, for every function with a SOLUTION region."""
    regions = solution_regions(master)
    return {name: source for source in code_cells(master)
            for name in re.findall(r"^def (\w+)\(", source, re.M) if name in regions}


def fill_regions(source, answers):
    """`source` with the region of each function in `answers` replaced; the others keep the solution."""
    out = []
    for part in re.split(r"(?m)^(?=def )", source):
        name = (re.findall(r"^def (\w+)\(", part, re.M) or [None])[0]
        if name in answers:
            part = REGION.sub(lambda m: textwrap.indent(answers[name].rstrip("\n") + "\n", m.group(1)), part)
        out.append(MARKER.sub("", part))
    return "".join(out)


def run_answers(imports, cells, answers=None, env=None):
    """`env` after running `imports`, then each answer cell of {function: source} once with `answers` typed in."""
    env = {"__name__": "__main__"} if env is None else env
    exec(imports, env)
    for source in dict.fromkeys(cells.values()):  # a cell may define two functions
        exec(fill_regions(source, answers or {}), env)
    return env
