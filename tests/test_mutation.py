"""Does a fixed sample of the mutation audit's mutants still score as the audit found?

The whole audit is `make mutants` (tests/mutation/audit.py): every mutant mutmut
makes of an exercise region, judged on five seeds, a sample re-graded by real
`sgdkit grade`, the table written to tests/corpus/MUTATION.md. Here, in
process and in a few seconds: every SAMPLE_EVERY-th mutant and every listed
equivalent, on two seeds. A listed equivalent keeps full marks; any other
mutant loses points in its own question, and no mutant loses any elsewhere.
"""
import re

import pytest

import checks
from mutation.inprocess import failing, student
from mutation.mutants import EQUIVALENT, all_mutants, equivalent_problems, equivalents, library_blocks_are_regions

SAMPLE_EVERY = 5
SEEDS = (0, 7)
LISTED = equivalents()
SAMPLE = [m for i, m in enumerate(all_mutants()) if i % SAMPLE_EVERY == 0 or m.id in LISTED]


@pytest.mark.parametrize("mutant", SAMPLE, ids=lambda m: m.id)
def test_sampled_mutant_scores_as_audited(mutant):
    """Is the mutant killed in its own question only, or, if listed as equivalent, given full marks?"""
    with student(mutant.stage, {mutant.function: mutant.text}) as env:
        for seed in SEEDS:
            result = {q: failing(q, env, seed) for q in checks.STAGES[mutant.stage].QUESTIONS}
            own = result.pop(mutant.question)
            assert result == {q: [] for q in result}, (seed, mutant.change)
            assert bool(own) != (mutant.id in LISTED), (seed, mutant.change, own)


def test_equivalents_name_current_mutants_with_reasons():
    """Does every entry of equivalent.md name a mutant that exists, with its current change and a reason?"""
    assert equivalent_problems(all_mutants(), LISTED) == []
    assert LISTED, f"{EQUIVALENT.name} lists no mutant: is its table intact?"


def test_every_library_exercise_is_an_audited_region():
    """Is every `# BEGIN EXERCISE` block of the library the text of a region the audit mutates?"""
    assert library_blocks_are_regions() == []


def test_the_table_counts_the_current_mutants():
    """Does tests/corpus/MUTATION.md count as many mutants per stage as the regions give today?"""
    table = (EQUIVALENT.parent / "MUTATION.md").read_text()
    recorded = {stage: int(count) for stage, count in re.findall(r"^\| (\d\d-[\w-]+) \| (\d+) \|", table, re.M)}
    counted = {stage: sum(m.stage == stage for m in all_mutants()) for stage in checks.STAGES}
    assert recorded == counted, "a solution region changed: rerun `make mutants`"
