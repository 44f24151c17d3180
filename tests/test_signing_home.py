"""A process whose home directory cannot be written (containers, daemons, CI users).

The per-user secret file lives in the home directory unless ``XDG_CONFIG_HOME`` says
otherwise. Where it can be neither read nor created, a cache still opens with a secret from
``secret=``, ``DISKSTORE_SECRET`` or ``XDG_CONFIG_HOME``; without any of them, opening
raises one :class:`diskstore.SecretUnavailableError` naming those three ways, and creates
nothing. Each case runs in a real child process whose ``HOME`` really cannot be written:

- ``under-a-file``: ``HOME`` is a path below a regular file (fails for every user);
- ``read-only-mount``: ``HOME`` is a read-only bind mount, as on a container's read-only
  root file system (needs ``unshare``, so root; skipped elsewhere);
- ``nobody``: the child drops to the ``nobody`` user, whose ``HOME`` is ``/nonexistent``
  (root only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534

#: Run in the child: open a cache as asked, store and read a pickled value, report as JSON.
#: Everything is loaded before the child may drop to ``nobody`` (who cannot read the
#: interpreter's files under /root).
_CHILD = """
import json, os, sys, tempfile, hashlib, hmac, pickle, traceback
import diskstore

how, directory = sys.argv[1], sys.argv[2]
if os.environ.pop("DROP_TO_NOBODY", None):
    with diskstore.Cache(tempfile.mkdtemp(), secret="warm up") as warm:  # load what it needs
        warm["x"] = {"a": 1}
        warm["x"]
    os.setgroups([])
    os.setgid(NOBODY_UID)
    os.setuid(NOBODY_UID)
    os.environ["HOME"] = "/nonexistent"
report = {"uid": os.getuid(), "home_writable": False}
try:
    os.makedirs(os.path.join(os.environ["HOME"], ".config", "probe"))
    report["home_writable"] = True
except OSError:
    pass
kwargs = {"secret": "a secret given as an argument"} if how == "argument" else {}
try:
    with diskstore.Cache(directory, **kwargs) as cache:
        cache["pickled"] = {"a": [1, 2]}
        report["value"] = cache["pickled"]
except Exception as exc:
    report["error"] = [type(exc).__name__, str(exc)]
    report["is_diskstore_error"] = isinstance(exc, diskstore.DiskStoreError)
    report["traceback"] = traceback.format_exc()
report["created"] = os.path.exists(directory)
print(json.dumps(report))
""".replace("NOBODY_UID", str(NOBODY))


def _unshare_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


@pytest.fixture(params=["under-a-file", "read-only-mount", "nobody"])
def home(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str], dict[str, str]]]:
    """``(HOME, command prefix, extra environment)`` for a child that cannot write HOME."""
    kind = request.param
    # Below a world-traversable directory, so that ``nobody`` can reach the cache directory.
    base = tempfile.mkdtemp(prefix="diskstore-home-")
    os.chmod(base, 0o777)
    try:
        if kind == "under-a-file":
            blocker = Path(base) / "not-a-directory"
            blocker.write_text("")
            yield str(blocker / "home"), [], {}
        elif kind == "read-only-mount":
            if not _unshare_works():
                pytest.skip("unshare -m is not permitted here (it needs root)")
            home_dir = Path(base) / "home"
            home_dir.mkdir()
            prefix = [
                "unshare", "-m", "sh", "-c",
                'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"',
                str(home_dir),
            ]  # fmt: skip
            yield str(home_dir), prefix, {}
        else:
            if os.geteuid() != 0:
                pytest.skip("dropping to nobody needs root")
            yield "/nonexistent", [], {"DROP_TO_NOBODY": "1"}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _open_in_child(
    home: tuple[str, list[str], dict[str, str]], how: str, tmp: Path
) -> dict[str, object]:
    home_path, prefix, extra = home
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("XDG_CONFIG_HOME", "DISKSTORE_SECRET")
    }
    env.update(extra, HOME=home_path, PYTHONPATH=str(ROOT))
    if how == "environment":
        env["DISKSTORE_SECRET"] = "a secret from the environment"
    elif how == "xdg":
        config = tmp / "xdg-config"
        config.mkdir(mode=0o777)
        os.chmod(config, 0o777)  # whatever the umask: nobody must be able to create in it
        env["XDG_CONFIG_HOME"] = str(config)
    directory = tmp / "cache"
    result = subprocess.run(
        [*prefix, sys.executable, "-c", _CHILD, how, str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    assert report["home_writable"] is False, "the child's HOME was writable after all"
    return report


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory the child may write whichever user it runs as."""
    path = Path(tempfile.mkdtemp(prefix="diskstore-home-work-"))
    os.chmod(path, 0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(180)
def test_without_any_secret_one_error_names_the_three_ways(
    home: tuple[str, list[str], dict[str, str]], shared_tmp: Path
) -> None:
    report = _open_in_child(home, "none", shared_tmp)
    assert "value" not in report
    name, message = report["error"]  # type: ignore[misc]
    assert name == "SecretUnavailableError" and report["is_diskstore_error"] is True
    for way in ("secret=", "DISKSTORE_SECRET", "XDG_CONFIG_HOME"):
        assert way in message, f"the error does not name {way}: {message}"
    assert message.count("[Errno") == 0  # the cause in words, once
    assert report["created"] is False  # nothing was created before the error


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["argument", "environment", "xdg"])
def test_a_secret_from_any_of_the_three_ways_opens_the_cache(
    home: tuple[str, list[str], dict[str, str]], how: str, shared_tmp: Path
) -> None:
    report = _open_in_child(home, how, shared_tmp)
    assert "error" not in report, report.get("traceback")
    assert report["value"] == {"a": [1, 2]}


@pytest.mark.timeout(180)
def test_the_command_line_says_the_same_in_one_line(shared_tmp: Path) -> None:
    directory = shared_tmp / "cache"
    subprocess.run(
        [sys.executable, "-c", f"import diskstore; diskstore.Cache({str(directory)!r}).close()"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=60,
    )
    blocker = shared_tmp / "file"
    blocker.write_text("")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("XDG_CONFIG_HOME", "DISKSTORE_SECRET")
    }
    env.update(HOME=str(blocker / "home"), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "diskstore", "stats", str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("diskstore stats: error: no signing secret")
    assert "DISKSTORE_SECRET" in lines[0] and "--inspect" in lines[0]
