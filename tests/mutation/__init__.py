"""The mutation audit: mutmut's mutants of every exercise region, judged by the hidden checks (`make mutants`).

inprocess.py builds a "student" from a master notebook's answer cells and
judges it as `sgdkit grade` does, without otter or kernels; mutants.py makes
the mutants and reads tests/corpus/equivalent.md; audit.py judges them all and
writes tests/corpus/MUTATION.md.
"""
