"""What ships: the wheel and sdist that ``pip wheel`` and ``python -m build`` make.

The build runs in a copy of the tracked files, so it never writes ``build/`` or
``*.egg-info`` into the checkout. Decisions checked here:

- the sdist builds the package and carries no tests (they need the whole repository);
- neither artefact carries tests, benchmarks or the docs site;
- an installed diskstore has no active test hook: ``DISKSTORE_CRASH_AT`` does nothing;
- the metadata has Project-URLs, classifiers and the ``cli`` extra;
- README links are absolute (PyPI renders the README away from the repository).
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/diskstore/diskstore/blob/main/"
pytestmark = pytest.mark.timeout(600)


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout to know which files are the project's")
    return [name for name in listed if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    source = tmp_path_factory.mktemp("source")
    for name in _tracked_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out / "pip"), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
         "--outdir", str(out / "build"), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return {
        "pip-wheel": next((out / "pip").glob("diskstore-*.whl")),
        "wheel": next((out / "build").glob("diskstore-*.whl")),
        "sdist": next((out / "build").glob("diskstore-*.tar.gz")),
    }


def _wheel_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as wheel:
        return set(wheel.namelist())


@pytest.mark.parametrize("kind", ["pip-wheel", "wheel"])
def test_the_wheel_holds_the_package_and_nothing_else(
    artefacts: dict[str, Path], kind: str
) -> None:
    names = _wheel_names(artefacts[kind])
    modules = {str(path.relative_to(ROOT)) for path in (ROOT / "diskstore").rglob("*.py")} | {
        "diskstore/py.typed"
    }
    assert modules <= names
    assert "diskstore/_cli/__init__.py" in names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"diskstore", artefacts[kind].name.split("-py3")[0] + ".dist-info"}
    assert not any("test" in name.split("/")[-1] for name in names if name.endswith(".py"))


def test_the_metadata_has_urls_classifiers_and_the_cli_extra(
    artefacts: dict[str, Path],
) -> None:
    with zipfile.ZipFile(artefacts["wheel"]) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(wheel.read(name).decode("utf-8"))
    urls = dict(value.split(", ", 1) for value in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Development Status") for c in classifiers)
    assert "cli" in (metadata.get_all("Provides-Extra") or [])
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("tqdm") and 'extra == "cli"' in r for r in requires)
    assert not any(r.startswith("tqdm") and "extra" not in r for r in requires)


def test_the_sdist_builds_the_package_without_tests(artefacts: dict[str, Path]) -> None:
    with tarfile.open(artefacts["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "LICENSE", "diskstore/__init__.py"} <= names
    assert "diskstore/py.typed" in names
    assert not any(name.startswith(("tests/", "benchmarks/", "docs/")) for name in names)


def test_an_installed_diskstore_has_no_active_test_hook(
    artefacts: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
         str(artefacts["wheel"])],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    program = (
        "import sys, diskstore\n"
        "assert diskstore.__file__.startswith(sys.argv[1]), diskstore.__file__\n"
        "with diskstore.Cache(sys.argv[2]) as cache:\n"
        "    cache.set('k', b'x' * 100_000)\n"
        "    cache.delete('k')\n"
        "print('survived')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    for point in ("file-written", "committed", "before-unlink"):
        completed = subprocess.run(
            [sys.executable, "-c", program, str(target), str(tmp_path / point)],
            env={**env, "DISKSTORE_CRASH_AT": point},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert (completed.returncode, completed.stdout) == (0, "survived\n"), completed.stderr


def test_readme_links_are_absolute_and_point_at_files_that_exist() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    inline = re.findall(r"\]\(([^)]+)\)", text)
    references = re.findall(r"^\[[^\]]+\]:\s*(\S+)", text, flags=re.MULTILINE)
    links = inline + references
    assert links
    relative = [link for link in links if not re.match(r"https?://", link)]
    assert relative == []
    for link in links:
        if link.startswith(REPOSITORY):
            assert (ROOT / link[len(REPOSITORY) :].split("#")[0]).exists(), link
