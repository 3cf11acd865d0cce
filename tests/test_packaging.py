"""What a user installs and what a packager unpacks: a lean wheel, a self-consistent sdist.

Both carry the LICENSE; neither names a URL the project does not have. ``.ci/run`` also runs
the sdist's own fast tests from its unpacked tree.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel, as ``uv build`` makes them (the wheel from the sdist)."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the packages (`uv run pytest` provides it)"
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [uv, "build", "--out-dir", str(out), "--quiet"],
        cwd=ROOT,
        check=True,
        timeout=300,
        capture_output=True,
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def _sdist_files(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as archive:
        return {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}


@pytest.mark.slow
def test_the_wheel_is_the_package_and_its_license(built: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(built[1]) as wheel:
        names = wheel.namelist()
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        headers = email.parser.Parser().parsestr(wheel.read(metadata).decode())
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"goth_actors", metadata.split("/", 1)[0]}  # no tests, docs or benchmarks
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert "goth_actors/py.typed" in names
    assert headers["License-Expression"] == "Apache-2.0"
    assert headers.get_all("Project-URL") is None  # no invented home: the project has none yet


@pytest.mark.slow
def test_the_sdist_holds_what_its_tests_read_and_its_readme_links(
    built: tuple[Path, Path],
) -> None:
    files = _sdist_files(built[0])
    for needed in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "mkdocs.yml"):
        assert needed in files
    for folder in ("goth_actors", "tests", "benchmarks", "examples", "docs"):
        assert any(name.startswith(folder + "/") for name in files), f"{folder}/ not shipped"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(((?!https?:)[^)#\s]+)", readme))
    assert linked, "README links no file of the repository any more: check the pattern"
    assert linked <= files, f"README links files the sdist lacks: {sorted(linked - files)}"
    # Every test module's own imports of the repository (benchmarks, examples) come along.
    for test in (ROOT / "tests").glob("*.py"):
        for module in re.findall(r"^from (benchmarks|examples)\b", test.read_text(), re.M):
            assert any(name.startswith(module + "/") for name in files), test.name
