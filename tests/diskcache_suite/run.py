"""Run diskcache 5.6.3's own test suite against diskstore (``make compat``).

The suite comes unmodified from diskcache's release on PyPI (the sdist ships ``tests/``).
It runs in a scratch directory under ``build/`` whose ``conftest.py`` calls
:func:`diskstore.install_as_diskcache`, so every ``import diskcache`` in it imports diskstore.
The sdist lacks three support files of the repository, which this directory provides in
versions of its own: the ``tests`` package marker, and the Django ``settings`` and ``models``
modules the Django tests import. Tests that cannot apply to diskstore are deselected, each
with its reason (listed in ``EXCLUDED`` below and in ``docs/differences.md``).

Usage: ``python tests/diskcache_suite/run.py [pytest arguments]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

RELEASE = "diskcache==5.6.3"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUILD = ROOT / "build" / "diskcache-suite"
OVERLAY = HERE / "overlay"

#: ``docs/tutorial.rst`` is not in the sdist; point this variable at a copy from the tagged
#: release to run ``test_doctest.py::test_tutorial`` too.
TUTORIAL_VARIABLE = "DISKCACHE_TUTORIAL"

#: Tests of the suite that cannot apply to diskstore, by node id, with the reason.
_LOCAL = "patches diskcache.Cache's private connection attribute _local"
_TRANSACT = "patches diskcache.Cache's private method _transact"
_DISK_MOCK = "replaces diskcache.Cache's private _disk with a Mock"
_OPEN = "patches the open() builtin inside diskcache.core, which diskstore does not use"
_COUNTS = (
    "expects diskcache's exact eviction counts: cull_limit items per set, judged by a "
    "volume that counts free database pages; diskstore evicts what the limit needs"
)
EXCLUDED: dict[str, str] = {
    "tests/test_core.py::test_pragma_error": _LOCAL,
    "tests/test_core.py::test_close_error": _LOCAL,
    "tests/test_core.py::test_set_timeout": _LOCAL,
    "tests/test_core.py::test_add_timeout": _LOCAL,
    "tests/test_core.py::test_clear_timeout": _TRANSACT,
    "tests/test_core.py::test_cull_timeout": _TRANSACT,
    "tests/test_core.py::test_get_ioerror_fast_path": _DISK_MOCK,
    "tests/test_core.py::test_pop_ioerror": _DISK_MOCK,
    "tests/test_core.py::test_pull_ioerror": _DISK_MOCK,
    "tests/test_core.py::test_peek_ioerror": _DISK_MOCK,
    "tests/test_core.py::test_peekitem_ioerror": _DISK_MOCK,
    "tests/test_core.py::test_get_keyerror4": _OPEN,
    "tests/test_core.py::test_disk_write_os_error": _OPEN,
    "tests/test_core.py::test_check": (
        "damages the count with reset('count', 0), which diskstore refuses: the count is kept "
        "exact by the table's triggers (the test's SQL through _sql itself runs)"
    ),
    "tests/test_core.py::test_cleanup_dirs": (
        "counts entries at the top of the directory; diskstore's value files live in one "
        "data/ folder, which stays when the last of them is removed"
    ),
    "tests/test_core.py::test_custom_eviction_policy": (
        "expects 50 repetitive 1,500-character strings to exceed 100 kB; diskstore stores "
        "them compressed, in 64 kB"
    ),
    "tests/test_core.py::test_least_recently_stored": _COUNTS,
    "tests/test_core.py::test_least_recently_used": _COUNTS,
    "tests/test_core.py::test_least_frequently_used": _COUNTS,
}

CONFTEST = '''\
"""Written by diskstore's tests/diskcache_suite/run.py: diskcache is diskstore here."""

import diskstore

diskstore.install_as_diskcache()
'''


def _sdist() -> Path:
    """Download the release's source distribution once, from the package index."""
    BUILD.mkdir(parents=True, exist_ok=True)
    found = sorted(BUILD.glob("diskcache-*.tar.gz"))
    if found:
        return found[0]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
         ":all:", RELEASE, "--dest", str(BUILD)],
        check=True,
    )  # fmt: skip
    return sorted(BUILD.glob("diskcache-*.tar.gz"))[0]


def _prepare(sdist: Path) -> Path:
    """Lay out the suite as a ``tests`` package beside a conftest that installs diskstore."""
    work = BUILD / "work"
    shutil.rmtree(work, ignore_errors=True)
    tests = work / "tests"
    tests.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts
            if len(parts) == 3 and parts[1] == "tests" and member.isfile():
                source = archive.extractfile(member)
                if source is not None:
                    (tests / parts[2]).write_bytes(source.read())
    for support in OVERLAY.glob("*.py"):
        shutil.copy(support, tests / support.name)
    (tests / "__init__.py").touch()
    (work / "conftest.py").write_text(CONFTEST)
    (work / "pytest.ini").write_text("[pytest]\ntimeout = 300\n")  # stops the search upwards
    tutorial = os.environ.get(TUTORIAL_VARIABLE)
    if tutorial:
        (work / "docs").mkdir()
        shutil.copy(tutorial, work / "docs" / "tutorial.rst")
    return work


def main(argv: list[str]) -> int:
    work = _prepare(_sdist())
    deselect = dict(EXCLUDED)
    if not (work / "docs" / "tutorial.rst").exists():
        deselect["tests/test_doctest.py::test_tutorial"] = (
            f"docs/tutorial.rst is not in the release sdist (set {TUTORIAL_VARIABLE})"
        )
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", "."]
    args += ["-p", "no:hypothesispytest"]  # the suite does not use hypothesis
    for node in sorted(deselect):
        args += ["--deselect", node]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
    print(f"diskcache suite: {len(deselect)} tests deselected:")
    for node, reason in sorted(deselect.items()):
        print(f"  {node}: {reason}")
    return subprocess.run([*args, "tests", *argv], cwd=work, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
