"""The timing rule every Python benchmark here uses (imported as `from timing import median_time`
when a benchmark runs as `python benchmarks/bench_*.py`)."""

import statistics
import time

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # cpu: the process's CPU time, all threads
_clock = CLOCKS["wall"]


def set_clock(name):
    """The clock of every later median_time: "wall" (default) or "cpu" (steadier on a shared machine)."""
    global _clock
    _clock = CLOCKS[name]


def median_time(fn, repeats, warmup=1):
    """Median time (set_clock's clock) of `repeats` calls of fn() after `warmup` untimed calls, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = _clock()
        fn()
        times.append(_clock() - start)
    return statistics.median(times)
