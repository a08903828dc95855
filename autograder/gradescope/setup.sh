#!/usr/bin/env bash
# Builds sgdkit's grading image, once, as root: Gradescope runs it after
# unzipping the autograder zip into /autograder/source; `otter grade`'s
# Dockerfile runs it after copying in only setup.sh, environment.yml and
# requirements.*, which is why the kit's wheel and pins are named so. Everything
# comes from the package registries: Python from apt, the kit's pinned
# dependencies from pip, the kit itself from the wheel inside the zip. Nothing
# else is fetched.
#
#   setup.sh            every step below, in order (what Gradescope runs)
#   setup.sh STEP...    only these steps (the kit's tests skip `system`)
#
# No account is made for student code: the grader runs each submission's
# kernel as a fresh uid of its own (far above any account's, no passwd entry
# needed; see isolation.py), so one submission cannot read another's files.
#
# SGDKIT_AUTOGRADER_ROOT moves /autograder (the kit's tests lay out a fake one).
set -euo pipefail

ROOT="${SGDKIT_AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PINS="$SOURCE/requirements.constraints.txt"
SEED="$SOURCE/seed"        # the base of every submission's seed; unknown to students
VENV="$ROOT/sgdkit-venv"   # student code runs on this Python: readable by all, writable by root
# Pythons the kit supports (requires-python >= 3.11), first choice first:
# Ubuntu 22.04 (Gradescope's default image) has 3.11 in universe, 24.04 has 3.12.
VERSIONS="3.11 3.12 3.13"

# apt: the first supported Python the image's archive offers, with venv.
system() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    local version
    for version in $VERSIONS; do
        if apt-cache show "python$version-venv" >/dev/null 2>&1; then
            apt-get install -y --no-install-recommends "python$version" "python$version-venv"
            return
        fi
    done
    echo "setup.sh: apt offers none of Python $VERSIONS (with venv)" >&2
    return 1
}

# The system Python to build the venv on (never one under /root: student code could not run it).
find_python() {
    local version
    for version in $VERSIONS; do
        if "/usr/bin/python$version" -c "import ensurepip, venv" >/dev/null 2>&1; then
            echo "/usr/bin/python$version"
            return
        fi
    done
    echo "setup.sh: no /usr/bin/python3.X with venv for X in $VERSIONS; run the system step" >&2
    return 1
}

# pip: the kit's wheel, its dependencies at the versions `sgdkit build` ran with.
venv() {
    local python zipped wheels
    python="$(find_python)"
    [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
    # pip wants a wheel under its own name: requirements.sgdkit-X-py3-none-any.whl -> sgdkit-X-py3-none-any.whl
    wheels="$(mktemp -d)"
    for zipped in "$SOURCE"/requirements.sgdkit-*.whl; do
        cp "$zipped" "$wheels/${zipped##*/requirements.}"
    done
    "$VENV/bin/python" -m pip install --no-cache-dir --disable-pip-version-check \
        --constraint "$PINS" "$wheels"/*.whl
    rm -rf "$wheels"
    "$VENV/bin/sgdkit" --help >/dev/null
}

# Student code may run Python and read the kit's libraries, never the hidden
# tests, the checks, the pins or the seed: /autograder/source is root's alone.
# (`otter grade` copies files/ and tests/ in after this step, world-readable;
# run_autograder makes the folder itself 0700 again before each submission.)
lockdown() {
    chmod 755 "$ROOT"
    chmod -R a+rX,go-w "$VENV"
    chown -R root:root "$SOURCE"
    chmod -R go-rwx "$SOURCE"
    if [ ! -s "$SEED" ]; then
        (umask 077 && od -An -N8 -tu8 /dev/urandom | tr -d ' \n' >"$SEED")
    fi
}

steps=("$@")
[ $# -gt 0 ] || steps=(system venv lockdown)
for step in "${steps[@]}"; do
    case "$step" in
        system | venv | lockdown) "$step" ;;
        *) echo "setup.sh: unknown step $step (steps: system venv lockdown)" >&2; exit 2 ;;
    esac
done
