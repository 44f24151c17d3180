"""The ``import`` workload: how long a fresh interpreter takes to ``import`` each cache.

Every sample is a new Python process that imports the package and reports the time the
import statement took (``time.perf_counter_ns`` around it), so the interpreter's own
start-up is left out and the two packages are compared on what they add. The processes
take rotating turns, like every other workload. Byte-code is compiled before the first
timed sample (and may be written), since that is how an installed package is imported;
an environment with ``PYTHONDONTWRITEBYTECODE`` would otherwise recompile diskstore (an
editable install) on every sample while diskcache's compiled files were reused. Both
imports run as if Django were not installed (see ``PROGRAM``).
"""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks import engines
from benchmarks.context import Context
from benchmarks.engines import DISKCACHE, DISKSTORE
from benchmarks.results import WorkloadResult
from benchmarks.timing import turns

# Django is blocked: diskcache imports it (for its DjangoCache) whenever it is installed,
# which would make diskcache's import several times slower than in most programs.
PROGRAM = (
    "import sys, time\n"
    "sys.modules['django'] = None\n"
    "start = time.perf_counter_ns()\n"
    "import {module}\n"
    "print(time.perf_counter_ns() - start)\n"
)
SAMPLES_PER_TURN = 3


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _time_import(module: str, env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(done.stdout.strip().splitlines()[-1])


def import_time(ctx: Context) -> WorkloadResult:
    """Time ``import diskstore`` (the candidate's package) against ``import diskcache``."""
    modules = {
        DISKSTORE: engines.candidate_module(ctx.candidate).__name__,
        DISKCACHE: engines.BASELINE.partition(":")[0],
    }
    result = WorkloadResult(
        "import", "a fresh interpreter imports the package", [DISKSTORE, DISKCACHE]
    )
    env = _environment()
    for module in modules.values():
        _time_import(module, env)  # compile and warm the file cache, untimed
    samples: dict[str, list[int]] = {DISKSTORE: [], DISKCACHE: []}
    for _, engine in turns((DISKSTORE, DISKCACHE), ctx.scale.rounds):
        for _ in range(SAMPLES_PER_TURN):
            samples[engine].append(_time_import(modules[engine], env))
    result.add_samples({"import": samples})
    return result
