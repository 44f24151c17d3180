"""The layers of docs/design.md are a contract: import-linter checks it (``make lint``).

The real package keeps every contract of ``[tool.importlinter]`` in pyproject.toml; a copy
of the package with one planted import that goes the wrong way breaks the contract that
forbids it. Each check runs import-linter in a fresh interpreter, on the package found
first on its ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]

LINT = (
    "import sys\nfrom importlinter.cli import lint_imports\nsys.exit(lint_imports(no_cache=True))"
)


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_every_contract() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


#: (module, line added at its end, contract it breaks, the import named in the report)
PLANTED = [
    pytest.param(
        "_storage/_store.py",
        "from .._caching import _cache  # noqa",
        "Each layer imports only the layers below it",
        "diskstore._storage._store -> diskstore._caching._cache",
        id="storage-imports-caching",
    ),
    pytest.param(
        "_common/_clock.py",
        "def _late():\n    from .._fs import _files  # noqa",
        "Each layer imports only the layers below it",
        "diskstore._common._clock -> diskstore._fs._files",
        id="a-lazy-import-counts-too",
    ),
    pytest.param(
        "_memo/_memoize.py",
        "from .._storage import _sql  # noqa",
        "Each layer imports only the layers below it",
        "diskstore._memo._memoize -> diskstore._storage._sql",
        id="memo-and-storage-are-independent",
    ),
    pytest.param(
        "_caching/_cache.py",
        "from ..fanout import FanoutCache  # noqa",
        "Public faces are thin: the layers never import them",
        "diskstore._caching._cache -> diskstore.fanout",
        id="a-layer-imports-a-public-module",
    ),
    pytest.param(
        "fanout.py",
        "import redis  # noqa",
        "Nothing but the Django and Redis integrations imports Django or Redis",
        "diskstore.fanout -> redis",
        id="the-core-imports-redis",
    ),
]


@pytest.mark.parametrize(("module", "line", "contract", "chain"), PLANTED)
def test_a_planted_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str, chain: str
) -> None:
    shutil.copytree(ROOT / "diskstore", tmp_path / "diskstore")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    planted = tmp_path / "diskstore" / module
    planted.write_text(planted.read_text(encoding="utf-8") + f"\n\n{line}\n", encoding="utf-8")
    done = _lint(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{contract} BROKEN" in done.stdout
    assert chain in done.stdout


def test_every_private_module_lives_in_a_layer_or_is_named_here() -> None:
    """A new module joins a layer; the top level keeps the public faces and a few others."""
    top = {path.name for path in (ROOT / "diskstore").iterdir() if path.suffix == ".py"}
    assert {name for name in top if name.startswith("_")} == {
        "__init__.py",
        "__main__.py",
        "_demo.py",
        "_install.py",
        "_moved.py",
    }
    assert len(top) <= 12


def test_design_md_places_every_module_of_a_layer_under_its_heading() -> None:
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    for package in sorted((ROOT / "diskstore").glob("_*/__init__.py")):
        layer = package.parent
        if layer.name == "_cli":
            continue
        heading = f"#### `{layer.name}/`"
        assert heading in text, heading
        section = text.split(heading, 1)[1].split("\n#", 1)[0]
        for module in sorted(layer.glob("_*.py")):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in section, f"{module.name} under {heading}"
