"""A fake /autograder in a temp folder, and the zip's own setup.sh run in it (test_gradescope, test_otter_grade).

SGDKIT_AUTOGRADER_ROOT points the zip's setup.sh and run_autograder at the fake
root. setup.sh's `venv` step (pip installs the kit's wheel and the pinned
dependencies, from the package sources this machine's pip is configured with)
runs once per test session, in a root of its own: every stage's zip holds the
same wheel and pins, so every fake root links to that one venv. The `system`
step (apt) is skipped: this machine already has the Debian python3.11 and
python3.11-venv it would install.
"""
import os
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

# What setup.sh's venv step reads from the zip, by the names package.py gives them.
INSTALLED = ("setup.sh", "requirements.constraints.txt", "requirements.sgdkit-")


def temp_base(prefix):
    """A temp folder that the student's uid can pass through, to reach the venv as it reaches /autograder."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)
    return base


def setup(root, *steps):
    """Run the zip's setup.sh steps as root, from the root folder (as Gradescope and `otter grade`'s RUN do)."""
    done = subprocess.run(["bash", str(root / "source" / "setup.sh"), *steps], cwd=root,
                          env={**os.environ, "SGDKIT_AUTOGRADER_ROOT": str(root)},
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"setup.sh {' '.join(steps)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def installed_files(zip_path):
    """{name: bytes} of what setup.sh's venv step installs from a stage's zip."""
    with zipfile.ZipFile(zip_path) as zf:
        return {name: zf.read(name) for name in zf.namelist() if name.startswith(INSTALLED)}


def build_venv(base, zips, stages):
    """Install the venv once, with setup.sh's venv step, from the first stage's zip: its root folder.

    Fails if the stages' zips do not hold the same setup.sh, wheel and pins (then they could not share it).
    """
    files = {stage: installed_files(zips / f"{stage}.zip") for stage in stages}
    assert all(found == files[stages[0]] for found in files.values()), "the stages' zips install different kits"
    root = base / "venv-root"
    (root / "source").mkdir(parents=True)
    for name, data in files[stages[0]].items():
        (root / "source" / name).write_bytes(data)
    start = time.monotonic()
    setup(root, "venv")
    print(f"\nsetup.sh venv: {time.monotonic() - start:.0f} s")
    return root / "sgdkit-venv"


def link_venv(root, venv):
    """Give a fake root the shared venv, where setup.sh's venv step would have put it."""
    (root / "sgdkit-venv").symlink_to(venv)
