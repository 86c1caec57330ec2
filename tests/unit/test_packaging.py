"""Installing the project prints no deprecation warning (setuptools warned ~40 times about
``project.license`` as a table, once per build step of ``pip install -e .``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PREPARE = """
import sys
import zipfile
from setuptools import build_meta
print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))
"""


def test_build_backend_reads_the_metadata_without_deprecation_warnings(tmp_path: Path) -> None:
    """What pip's build step runs, on a copy of the project file (no egg-info in the tree)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", PREPARE, str(tmp_path)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "deprecat" not in output.lower(), output
    metadata = (tmp_path / done.stdout.split()[-1] / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata


EDITABLE = """
import sys
import zipfile
from setuptools import build_meta
print(build_meta.build_editable(sys.argv[1]))
"""


def test_the_editable_install_is_a_plain_path_file_built_without_notices(tmp_path: Path) -> None:
    """What ``make`` installs (``pip install -e``), on a copy of the packages: no warning box."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    for package in ("schemas", "lifecycle", "streams", "agents"):
        shutil.copytree(
            ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", EDITABLE, str(wheels)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Editable installation" not in output, output
    assert "deprecat" not in output.lower(), output
    with zipfile.ZipFile(wheels / done.stdout.split()[-1]) as wheel:
        paths = [n for n in wheel.namelist() if n.endswith(".pth")]
        assert len(paths) == 1, wheel.namelist()
        assert wheel.read(paths[0]).decode().strip() == str(project)
