"""Package a built stage for graders: <stage>.zip for `sgdkit grade`, Gradescope and `otter grade`, and <stage>.json.

The zip is otter's autograder zip (tests/, files/, otter_config.json: what
`sgdkit grade` and `otter run -a` read) with otter's setup (Miniforge from
GitHub, hidden tests run in the student's kernel) replaced by the kit's own
(autograder/gradescope/): setup.sh and run_autograder; the kit as a wheel and
the pins of its dependencies, named requirements.* because `otter grade`'s
Dockerfile copies only those in (with setup.sh and environment.yml) before it
runs setup.sh; environment.yml and run_otter.py, which only satisfy that
Dockerfile's ADD lines; and files/sgdkit_stage.json, the stage summary (without
the measured run time, so that the zip's bytes depend only on the sources).
"""
import hashlib
import io
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

from . import ROOT
from .assign import BuildJob
from .gradescope import STAGE_SUMMARY

GRADESCOPE = ROOT / "autograder" / "gradescope"
PYPROJECT = ROOT / "pyproject.toml"
RUNNERS = ("setup.sh", "run_autograder")  # executable
PLACEHOLDERS = ("environment.yml", "run_otter.py")  # only there because `otter grade`'s Dockerfile ADDs them
# What setup.sh installs, named for that Dockerfile, which copies in requirements.* before it runs setup.sh.
REQUIREMENTS = "requirements."
PINS = REQUIREMENTS + "constraints.txt"
# Ubuntu 22.04's python3.11 (Gradescope's default image). A pin that rules it
# out applies only where it can; elsewhere pip takes the newest version that fits.
OLDEST_PYTHON = "3.11.0"
EXECUTABLE, READABLE = 0o100755 << 16, 0o100644 << 16


def write_autograder(job: BuildJob, zips: Path) -> None:
    """<zips>/<stage>.zip and <stage>.json: what `sgdkit grade` reads."""
    zips.mkdir(parents=True, exist_ok=True)
    repack(gradescope_zip(job), zips / f"{job.stage.name}.zip")
    summary = {**stage_summary(job), "solution_seconds": job.solution_seconds}
    write_if_changed(zips / f"{job.stage.name}.json", (json.dumps(summary, indent=2) + "\n").encode())


def stage_summary(job: BuildJob) -> dict[str, Any]:
    """The stage's name, notebook, questions and the libraries its notebook imports, as `sgdkit grade` reads
    them from <stage>.json (its fork server imports those libraries once, for every kernel)."""
    master = job.masters[job.stage.name]
    return {
        "stage": job.stage.name,
        "notebook": job.stage.notebook,
        "questions": [{"name": q.name, "points": q.points, "manual": q.manual} for q in master.questions],
        "preload": master.libraries,
    }


def gradescope_zip(job: BuildJob) -> Path:
    """otter's autograder zip with the kit's own setup, wheel, pins and stage summary (see above)."""
    folder = job.work / "gradescope"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    wheel = kit_wheel(folder)
    ours = {name: ((GRADESCOPE / name).read_bytes(), EXECUTABLE) for name in RUNNERS}
    ours.update({name: ((GRADESCOPE / name).read_bytes(), READABLE) for name in PLACEHOLDERS})
    ours[STAGE_SUMMARY] = ((json.dumps(stage_summary(job), indent=2) + "\n").encode(), READABLE)
    ours[PINS] = (pinned_requirements().encode(), READABLE)
    ours[REQUIREMENTS + wheel.name] = (wheel.read_bytes(), READABLE)
    dest = folder / f"{job.stage.name}.zip"
    assert job.otter_zip is not None  # run_assign sets it, and packaging comes after it
    with zipfile.ZipFile(job.otter_zip) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            # otter's own setup (setup.sh, run_autograder, requirements.txt, ...) is replaced by the kit's
            if info.filename not in ours and not info.filename.startswith(REQUIREMENTS):
                zout.writestr(info, zin.read(info))
        for name, (data, mode) in ours.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode
            zout.writestr(info, data)
    return dest


def kit_wheel(folder: Path) -> Path:
    """The kit (autograder/sgdkit) as a wheel in `folder`, written directly: no build backend, no network.

    Its bytes depend only on the sources and pyproject.toml (fixed timestamps,
    sorted entries), so an unchanged kit gives an unchanged zip.
    """
    import base64
    import tomllib

    project = tomllib.loads(PYPROJECT.read_text())["project"]
    name, version = project["name"], project["version"]
    info = f"{name}-{version}.dist-info"
    package = Path(__file__).parent
    files = {f"sgdkit/{p.relative_to(package).as_posix()}": p.read_bytes() for p in sorted(package.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    metadata = [
        "Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}", *[f"Requires-Dist: {d}" for d in project["dependencies"]],
    ]
    scripts = [f"{script} = {target}" for script, target in project.get("scripts", {}).items()]
    files[f"{info}/METADATA"] = "\n".join(metadata + [""]).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: sgdkit build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = "\n".join(["[console_scripts]", *scripts, ""]).encode()
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for path, data in files.items()]
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,", ""]).encode()
    plain, wheel = folder / "plain.zip", folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(plain, "w") as zf:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path)
            entry.external_attr = READABLE
            zf.writestr(entry, data)
    repack(plain, wheel)
    plain.unlink()
    return wheel


def pinned_requirements() -> str:
    """pip constraints: every distribution installed beside the kit here, at the version it has here."""
    from importlib.metadata import distributions

    pins = {}
    for dist in distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
        if name and name not in pins and name not in ("sgdkit", "pip", "setuptools", "wheel"):
            # the kit comes from its wheel; the installer tools are the venv's own
            pins[name] = f"{name}=={dist.version}{_python_marker(dist.metadata['Requires-Python'])}"
    lines = ["# Written by `sgdkit build`: the versions the kit was built and tested with (pip constraints)."]
    return "\n".join(lines + [pins[name] for name in sorted(pins)] + [""])


def _python_marker(requires_python: str | None) -> str:
    """'' if a distribution's Requires-Python admits OLDEST_PYTHON, else a marker limiting its pin to where it fits."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        needs = SpecifierSet(requires_python or "")
    except InvalidSpecifier:  # a legacy spelling, which pip ignores too
        return ""
    if needs.contains(OLDEST_PYTHON):
        return ""
    return "; " + " and ".join(f'python_full_version {s.operator} "{s.version}"' for s in needs)


def write_if_changed(path: Path, data: bytes) -> None:
    """Write `data` unless the file already holds it (keeps mtimes of unchanged files)."""
    if not path.is_file() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def repack(source: Path, dest: Path) -> None:
    """Copy a zip with fixed timestamps and sorted entries, so equal contents give equal bytes."""
    packed = io.BytesIO()
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in sorted(zin.namelist()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = zin.getinfo(name).external_attr
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, zin.read(name))
    write_if_changed(dest, packed.getvalue())
