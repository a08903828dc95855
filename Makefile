# The kit's commands. Each one first makes .venv from pyproject.toml when it is
# missing or older than pyproject.toml, so a fresh clone needs only Python 3.11.
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.installed

.PHONY: test demo mutants bench build check

$(READY): pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --editable '.[dev]'
	touch $@

# The fast subset: everything but the whole bug corpus, on every core: pytest-xdist, a file to a worker, so
# that the tests sharing a file's graded batch run it once (its loadgroup does not work with pytest 9.2).
test: $(READY)
	$(PY) -m pytest -q -n auto --dist loadfile

# The whole planted-bug corpus, graded with real otter; then the mutation audit
# (tests/mutation/audit.py): every mutmut mutant of every exercise region judged
# by the hidden checks, a sample re-graded for real, tests/corpus/MUTATION.md written.
mutants: $(READY)
	$(PY) -m pytest -q -m mutants
	$(PY) tests/mutation/audit.py

demo: $(READY)
	$(VENV)/bin/sgdkit demo

bench: $(READY)
	$(PY) benchmarks/bench_grade.py

build: $(READY)
	$(VENV)/bin/sgdkit build

# Fails, listing the files, when assignments/ is not what `sgdkit build` would
# write from solutions/ now (a generated file edited by hand, a source not rebuilt);
# then type-checks the tooling (autograder/sgdkit; settings in pyproject.toml).
check: $(READY)
	$(VENV)/bin/sgdkit build --check
	$(PY) -m mypy
