"""Installing the project prints no deprecation warning (setuptools warned ~40 times about
``project.license`` as a table, once per build step of ``pip install -e .``), and the wheel
holds every installed package with its data, and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HOOK = """
import sys
from setuptools import build_meta
print(getattr(build_meta, sys.argv[1])(sys.argv[2]))
"""

PACKAGES = ("schemas", "lifecycle", "streams", "agents", "cli", "mailer", "analytics")


def build(tmp_path: Path, hook: str, *, packages: tuple[str, ...] = ()) -> tuple[Path, str]:
    """Run the build backend's ``hook`` as pip does, warnings shown, on a copy of the project
    file (no egg-info in the tree) and of ``packages``: what it made, and all it printed."""
    project, out = tmp_path / "project", tmp_path / "out"
    project.mkdir()
    out.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    for package in packages:
        shutil.copytree(
            ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", HOOK, hook, str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "deprecat" not in output.lower(), output
    return out / done.stdout.split()[-1], output


def test_build_backend_reads_the_metadata_without_deprecation_warnings(tmp_path: Path) -> None:
    """What pip's build step runs."""
    metadata, _output = build(tmp_path, "prepare_metadata_for_build_wheel")
    assert "License-Expression: Apache-2.0" in (metadata / "METADATA").read_text()


def test_the_editable_install_is_a_plain_path_file_built_without_notices(tmp_path: Path) -> None:
    """What ``make`` installs (``pip install -e``): no warning box."""
    made, output = build(tmp_path, "build_editable", packages=PACKAGES)
    assert "Editable installation" not in output, output
    with zipfile.ZipFile(made) as wheel:
        paths = [n for n in wheel.namelist() if n.endswith(".pth")]
        assert len(paths) == 1, wheel.namelist()
        assert wheel.read(paths[0]).decode().strip() == str(tmp_path / "project")


def test_the_wheel_holds_every_installed_package_and_its_data(tmp_path: Path) -> None:
    """What ``pip install .`` (the Docker image) installs: each package the build includes,
    every file its package data names, the console script; not the harness tests and
    benchmarks share."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    made, _output = build(tmp_path, "build_wheel", packages=(*PACKAGES, "harness"))
    with zipfile.ZipFile(made) as wheel:
        names = set(wheel.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == set(PACKAGES)
    data = {
        path.relative_to(ROOT).as_posix()
        for package, patterns in pyproject["tool"]["setuptools"]["package-data"].items()
        for pattern in patterns
        for path in (ROOT / package).glob(pattern)
    }
    assert "mailer/templates/welcome.txt" in data
    assert data <= names, sorted(data - names)
    assert "lifecycle = cli.main:main" in scripts
