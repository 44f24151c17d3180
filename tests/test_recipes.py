"""Tests for diskstore.recipes: averages, locks, semaphores, throttling, barriers, stampedes."""

from __future__ import annotations

import doctest
import multiprocessing
import threading
import time

import pytest

import diskstore
import diskstore.recipes
from diskstore.fanout import FanoutCache
from diskstore.recipes import (
    Averager,
    BoundedSemaphore,
    Lock,
    RLock,
    barrier,
    memoize_stampede,
    throttle,
)

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def cache(tmp_path):
    with diskstore.Cache(str(tmp_path / "cache"), eviction_policy="none") as made:
        yield made


def run_processes(target, args_list, timeout=120):
    """Start one spawned process per argument tuple; fail (never hang) if one is stuck."""
    processes = [SPAWN.Process(target=target, args=args) for args in args_list]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
    hung = [process for process in processes if process.is_alive()]
    for process in hung:
        process.kill()
        process.join(5)
    assert not hung, f"{len(hung)} worker process(es) did not finish in {timeout} s"
    assert [process.exitcode for process in processes] == [0] * len(processes)


def run_threads(target, count):
    threads = [threading.Thread(target=target, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)


def test_exported_from_package():
    for name in (
        "Averager",
        "Lock",
        "RLock",
        "BoundedSemaphore",
        "throttle",
        "barrier",
        "memoize_stampede",
    ):
        assert getattr(diskstore, name) is getattr(diskstore.recipes, name)


def test_docstring_examples_run():
    result = doctest.testmod(diskstore.recipes, verbose=False)
    assert result.attempted >= 7
    assert result.failed == 0


# -- Averager ---------------------------------------------------------------------------


def test_averager(cache):
    average = Averager(cache, "latency", expire=100, tag="metrics")
    assert average.get() is None
    for value in (0.080, 0.120, 0.160):
        average.add(value)
    assert average.get() == pytest.approx(0.12)
    (total, count), tag = cache.get("latency", tag=True)
    assert (total, count, tag) == (pytest.approx(0.36), 3, "metrics")
    assert average.pop() == pytest.approx(0.12)
    assert average.get() is None
    assert "latency" not in cache


def test_averager_counts_every_thread(cache):
    average = Averager(cache, "n")

    def add(number):
        for _ in range(20):
            average.add(number)

    run_threads(add, 4)
    assert cache["n"] == (pytest.approx(20 * (0 + 1 + 2 + 3)), 80)


def test_averager_on_a_fanout_cache(tmp_path):
    with FanoutCache(str(tmp_path), shards=3) as fanout:
        average = Averager(fanout, "fan")
        average.add(1)
        average.add(2)
        assert average.get() == 1.5


# -- Lock -------------------------------------------------------------------------------


class TestLock:
    def test_acquire_release_locked(self, cache):
        lock = Lock(cache, "lock")
        assert lock.locked() is False
        assert lock.acquire() is True
        assert lock.locked() is True
        lock.release()
        assert lock.locked() is False
        with lock:
            assert lock.locked()
        assert not lock.locked()

    def test_non_blocking_and_timeout_when_held(self, cache):
        holder = Lock(cache, "lock")
        other = Lock(cache, "lock")
        holder.acquire()
        assert other.acquire(blocking=False) is False
        assert other.acquire(timeout=0.05) is False
        assert other.acquire(timeout=0) is False
        holder.release()
        assert other.acquire(blocking=False) is True
        other.release()

    def test_waiting_acquire_gets_the_lock_once_released(self, cache):
        holder = Lock(cache, "lock")
        holder.acquire()
        threading.Timer(0.1, holder.release).start()
        assert Lock(cache, "lock").acquire(timeout=30) is True

    def test_any_holder_may_release_like_threading_lock(self, cache):
        Lock(cache, "lock").acquire()
        Lock(cache, "lock").release()
        assert not Lock(cache, "lock").locked()

    def test_releasing_an_unheld_lock_does_nothing(self, cache):
        lock = Lock(cache, "lock")
        lock.release()
        assert not lock.locked()

    def test_expired_lock_can_be_taken_and_old_holder_leaves_it(self, cache):
        crashed = Lock(cache, "lock", expire=0.05)
        assert crashed.acquire() is True
        successor = Lock(cache, "lock", expire=60)
        assert successor.acquire(timeout=30) is True
        crashed.release()
        assert successor.locked()
        successor.release()
        assert not successor.locked()

    def test_tag_is_stored(self, cache):
        with Lock(cache, "lock", tag="locks"):
            assert cache.get("lock", tag=True)[1] == "locks"

    @pytest.mark.parametrize(
        ("kwargs", "error", "pattern"),
        [
            ({"blocking": False, "timeout": 1}, ValueError, "timeout"),
            ({"timeout": -2}, ValueError, "timeout"),
            ({"timeout": "1"}, TypeError, "timeout"),
            ({"timeout": float("nan")}, ValueError, "timeout"),
        ],
    )
    def test_bad_acquire_arguments(self, cache, kwargs, error, pattern):
        with pytest.raises(error, match=pattern):
            Lock(cache, "lock").acquire(**kwargs)
        assert not Lock(cache, "lock").locked()

    def test_timeout_minus_one_means_no_bound(self, cache):
        assert Lock(cache, "lock").acquire(timeout=-1) is True

    @pytest.mark.parametrize("expire", [0, -1, "5"])
    def test_bad_expire(self, cache, expire):
        with pytest.raises((ValueError, TypeError), match="expire"):
            Lock(cache, "lock", expire=expire)

    def test_threads_exclude_each_other(self, cache):
        lock = Lock(cache, "lock")
        state = {"inside": 0, "most": 0, "total": 0}

        def work(_):
            for _ in range(15):
                with lock:
                    state["inside"] += 1
                    state["most"] = max(state["most"], state["inside"])
                    total = state["total"]
                    time.sleep(0.0005)
                    state["total"] = total + 1
                    state["inside"] -= 1

        run_threads(work, 4)
        assert state == {"inside": 0, "most": 1, "total": 60}


def critical_section(cache, lock):
    """Read-sleep-write a counter and record how many holders were inside at once."""
    inside = cache.incr("inside", retry=True)
    with cache.transact(retry=True):
        if inside > cache.get("most", 0, retry=True):
            cache.set("most", inside, retry=True)
    value = cache.get("counter", 0, retry=True)
    time.sleep(0.002)
    cache.set("counter", value + 1, retry=True)
    cache.decr("inside", retry=True)


def lock_worker(directory, factory_name, iterations):
    with diskstore.Cache(directory, eviction_policy="none") as cache:
        factory = getattr(diskstore.recipes, factory_name)
        lock = factory(cache, "lock", expire=60)
        for _ in range(iterations):
            with lock:
                critical_section(cache, lock)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("factory_name", ["Lock", "RLock"])
def test_four_processes_never_hold_the_lock_at_once(tmp_path, factory_name):
    directory = str(tmp_path)
    run_processes(lock_worker, [(directory, factory_name, 25)] * 4)
    with diskstore.Cache(directory) as cache:
        assert cache["counter"] == 100
        assert cache["most"] == 1
        assert cache["inside"] == 0
        assert "lock" not in cache


# -- RLock ------------------------------------------------------------------------------


class TestRLock:
    def test_reentrant_in_one_thread(self, cache):
        rlock = RLock(cache, "r")
        assert rlock.acquire() is True
        assert rlock.acquire() is True
        with rlock:
            assert cache["r"][1] == 3
        rlock.release()
        assert cache["r"][1] == 1
        rlock.release()
        assert "r" not in cache

    def test_other_threads_wait(self, cache):
        rlock = RLock(cache, "r")
        rlock.acquire()
        results = []

        def try_take(_):
            results.append(rlock.acquire(blocking=False))
            results.append(rlock.acquire(timeout=0.05))

        run_threads(try_take, 1)
        assert results == [False, False]
        rlock.release()
        run_threads(lambda _: results.append(rlock.acquire(blocking=False)), 1)
        assert results[-1] is True

    def test_release_by_non_owner_is_a_runtime_error(self, cache):
        rlock = RLock(cache, "r")
        with pytest.raises(RuntimeError, match="un-acquired"):
            rlock.release()
        rlock.acquire()
        errors = []

        def release_elsewhere(_):
            try:
                rlock.release()
            except RuntimeError as exc:
                errors.append(exc)

        run_threads(release_elsewhere, 1)
        assert len(errors) == 1
        assert cache["r"][1] == 1
        rlock.release()

    def test_expired_rlock_can_be_taken(self, cache):
        RLock(cache, "r", expire=0.05).acquire()
        taken = []
        run_threads(lambda _: taken.append(RLock(cache, "r").acquire(timeout=30)), 1)
        assert taken == [True]


# -- BoundedSemaphore -------------------------------------------------------------------


class TestBoundedSemaphore:
    def test_admits_value_holders(self, cache):
        slots = BoundedSemaphore(cache, "s", value=2)
        assert slots.acquire() is True
        assert slots.acquire() is True
        assert slots.acquire(blocking=False) is False
        assert slots.acquire(timeout=0.02) is False
        slots.release()
        with slots:
            assert slots.acquire(blocking=False) is False
        slots.release()
        assert "s" not in cache

    def test_over_release_is_a_value_error(self, cache):
        slots = BoundedSemaphore(cache, "s", value=1)
        with pytest.raises(ValueError, match="released too many times"):
            slots.release()
        slots.acquire()
        slots.release()
        with pytest.raises(ValueError):
            slots.release()

    @pytest.mark.parametrize(("value", "error"), [(-1, ValueError), (1.5, TypeError)])
    def test_bad_value(self, cache, value, error):
        with pytest.raises(error, match="value"):
            BoundedSemaphore(cache, "s", value=value)

    def test_expiry_restores_every_slot(self, cache):
        slots = BoundedSemaphore(cache, "s", value=1, expire=0.05)
        slots.acquire()
        assert BoundedSemaphore(cache, "s", value=1).acquire(timeout=30) is True


def semaphore_worker(directory, iterations):
    with diskstore.Cache(directory, eviction_policy="none") as cache:
        slots = BoundedSemaphore(cache, "slots", value=2, expire=60)
        for _ in range(iterations):
            with slots:
                inside = cache.incr("inside", retry=True)
                with cache.transact(retry=True):
                    if inside > cache.get("most", 0, retry=True):
                        cache.set("most", inside, retry=True)
                time.sleep(0.003)
                cache.decr("inside", retry=True)
                cache.incr("entries", retry=True)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bounded_semaphore_of_two_never_admits_three_processes(tmp_path):
    directory = str(tmp_path)
    run_processes(semaphore_worker, [(directory, 20)] * 4)
    with diskstore.Cache(directory) as cache:
        assert cache["entries"] == 80
        assert 1 <= cache["most"] <= 2
        assert cache["inside"] == 0
        assert "slots" not in cache


# -- throttle ---------------------------------------------------------------------------


def assert_token_bucket(times, count, seconds):
    """Every window [t_i, t_j] of admissions must fit ``count`` plus the refill."""
    ordered = sorted(times)
    rate = count / seconds
    for first in range(len(ordered)):
        for last in range(first, len(ordered)):
            admitted = last - first + 1
            allowed = count + rate * (ordered[last] - ordered[first]) + 1e-6
            assert admitted <= allowed, (ordered[first], ordered[last], admitted)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, delay):
        self.sleeps.append(delay)
        self.now += delay


class TestThrottle:
    def test_admits_the_burst_then_the_rate(self, cache):
        clock = FakeClock()

        @throttle(cache, 5, 1, time_func=clock.time, sleep_func=clock.sleep)
        def call():
            return clock.now

        times = [call() for _ in range(20)]
        assert times[:5] == [0.0] * 5
        assert times[5:] == pytest.approx([0.2 * step for step in range(1, 16)])
        assert_token_bucket(times, 5, 1)
        assert all(delay > 0 for delay in clock.sleeps)

    def test_idle_time_refills_only_up_to_count(self, cache):
        clock = FakeClock()

        @throttle(cache, 3, 2, name="idle", time_func=clock.time, sleep_func=clock.sleep)
        def call():
            return clock.now

        [call() for _ in range(3)]
        clock.now += 1000
        times = [call() for _ in range(6)]
        assert times[:3] == [1000.0] * 3
        assert times[3] > 1000
        assert_token_bucket(times, 3, 2)

    def test_name_expire_and_tag(self, cache):
        clock = FakeClock()

        @throttle(cache, 2, 1, name="api", expire=60, tag="throttles", time_func=clock.time)
        def call(value):
            return value * 2

        assert call(21) == 42
        assert call.__name__ == "call"
        (_, tokens), expire_time, tag = cache.get("api", expire_time=True, tag=True)
        assert tokens == pytest.approx(1.0)
        assert tag == "throttles"
        assert expire_time is not None

    def test_default_name_is_the_function_name(self, cache):
        @throttle(cache, 100, 1)
        def named():
            return "ok"

        assert named() == "ok"
        assert f"{__name__}.TestThrottle.test_default_name_is_the_function_name.<locals>.named" in (
            set(cache)
        )

    @pytest.mark.parametrize(
        ("count", "seconds", "error", "pattern"),
        [
            (0, 1, ValueError, "count"),
            (-3, 1, ValueError, "count"),
            (5, 0, ValueError, "seconds"),
            (5, -1, ValueError, "seconds"),
            (5, float("inf"), ValueError, "seconds"),
            (5, float("nan"), ValueError, "seconds"),
            ("5", 1, TypeError, "count"),
            (2.5, 1, TypeError, "count"),
            (5, "1", TypeError, "seconds"),
        ],
    )
    def test_bad_arguments(self, cache, count, seconds, error, pattern):
        with pytest.raises(error, match=pattern):
            throttle(cache, count, seconds)


def throttled_worker(directory, clock, calls, results):
    """Call a throttled function ``calls`` times on a clock shared by every process."""
    last_read = [0.0]

    def shared_time():
        last_read[0] = clock.value
        return last_read[0]

    def shared_sleep(delay):
        with clock.get_lock():
            clock.value += delay

    with diskstore.Cache(directory, eviction_policy="none") as cache:

        @throttle(cache, 5, 1, name="shared", time_func=shared_time, sleep_func=shared_sleep)
        def admitted():
            # The throttle reads the clock once per attempt, inside its transaction, so the
            # last value read is the time this call was admitted at.
            return last_read[0]

        results.put([admitted() for _ in range(calls)])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_throttle_holds_its_rate_across_four_processes(tmp_path):
    clock = SPAWN.Value("d", 0.0)
    results = SPAWN.Queue()
    processes = [
        SPAWN.Process(target=throttled_worker, args=(str(tmp_path), clock, 15, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    times = []
    try:
        for _ in processes:
            times.extend(results.get(timeout=180))
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    assert [process.exitcode for process in processes] == [0] * 4
    assert len(times) == 60
    assert sorted(times)[:5] == [0.0] * 5
    assert_token_bucket(times, 5, 1)


# -- barrier ----------------------------------------------------------------------------


def test_barrier_serializes_calls(cache):
    state = {"inside": 0, "most": 0}

    @barrier(cache, Lock, name="serial", expire=60)
    def work(number):
        state["inside"] += 1
        state["most"] = max(state["most"], state["inside"])
        time.sleep(0.005)
        state["inside"] -= 1
        return number

    assert work.__name__ == "work"
    run_threads(lambda number: [work(number) for _ in range(5)], 4)
    assert state == {"inside": 0, "most": 1}
    assert "serial" not in cache


def test_barrier_with_a_semaphore_factory(cache):
    seen = []

    @barrier(cache, BoundedSemaphore)
    def work():
        seen.append(cache.get(f"{__name__}.test_barrier_with_a_semaphore_factory.<locals>.work"))
        return "done"

    assert work() == "done"
    assert seen == [0]


# -- memoize_stampede -------------------------------------------------------------------


def wait_for_refresh_threads():
    """Let background refreshes finish before the cache fixture closes the cache."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = [thread.name for thread in threading.enumerate()]
        if not any(name.startswith(diskstore.recipes.REFRESH_THREAD_PREFIX) for name in names):
            return
        time.sleep(0.01)
    raise AssertionError("a memoize_stampede refresh thread did not finish")


class TestMemoizeStampede:
    def test_caches_results_with_their_compute_time(self, cache):
        calls = []

        @memoize_stampede(cache, expire=60)
        def square(number):
            calls.append(number)
            return number * number

        assert square(12) == 144
        assert square(12) == 144
        assert calls == [12]
        result, seconds = cache[square.__cache_key__(12)]
        assert result == 144
        assert seconds >= 0
        assert square.__wrapped__(3) == 9

    def test_typed_ignore_and_name(self, cache):
        @memoize_stampede(cache, expire=60, name="custom", typed=True, ignore={"verbose"})
        def echo(value, verbose=False):
            return value

        assert echo.__cache_key__(3)[0] == "custom"
        assert echo.__cache_key__(3) != echo.__cache_key__(3.0)
        assert echo.__cache_key__(3, verbose=True) == echo.__cache_key__(3)

    def test_recomputes_early_in_the_background(self, cache):
        calls = []

        @memoize_stampede(cache, expire=60, beta=1e12)
        def slow():
            calls.append(len(calls))
            time.sleep(0.01)
            return len(calls)

        assert slow() == 1
        # With a huge beta every hit looks close to expiry: the stored result is returned at
        # once and one refresh runs in a background thread.
        assert slow() == 1
        deadline = time.monotonic() + 30
        while cache[slow.__cache_key__()][0] != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cache[slow.__cache_key__()][0] == 2
        assert slow() in (2, 3)
        wait_for_refresh_threads()

    def test_zero_beta_never_recomputes_early(self, cache):
        calls = []

        @memoize_stampede(cache, expire=60, beta=0)
        def compute():
            calls.append(1)
            time.sleep(0.005)
            return "value"

        for _ in range(20):
            assert compute() == "value"
        time.sleep(0.05)
        assert calls == [1]

    def test_refresh_after_close_ends_quietly(self, tmp_path):
        cache = diskstore.Cache(str(tmp_path / "closing"))
        started, finish = threading.Event(), threading.Event()

        @memoize_stampede(cache, expire=60, beta=1e12, ignore={"started", "finish"})
        def compute():
            if started.is_set():
                finish.wait(10)
            started.set()
            time.sleep(0.002)
            return "value"

        assert compute() == "value"
        assert compute() == "value"  # starts a refresh, which blocks until `finish`
        cache.close()
        finish.set()
        wait_for_refresh_threads()

    def test_expired_result_is_computed_again(self, cache):
        calls = []

        @memoize_stampede(cache, expire=0.05, beta=0)
        def compute():
            calls.append(1)
            return len(calls)

        assert compute() == 1
        time.sleep(0.1)
        assert compute() == 2

    @pytest.mark.parametrize(
        ("kwargs", "error", "pattern"),
        [
            ({"expire": 0}, ValueError, "expire"),
            ({"expire": None}, TypeError, "expire"),
            ({"expire": 1, "beta": -1}, ValueError, "beta"),
            ({"expire": 1, "name": 5}, TypeError, "name"),
        ],
    )
    def test_bad_arguments(self, cache, kwargs, error, pattern):
        with pytest.raises(error, match=pattern):
            memoize_stampede(cache, **kwargs)
