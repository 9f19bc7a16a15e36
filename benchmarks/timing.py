"""The timing rule every Python benchmark here uses (imported as `from timing import median_time`
when a benchmark runs as `python benchmarks/bench_*.py`)."""

import statistics
import time


def median_time(fn, repeats, warmup=1):
    """Median wall time of `repeats` calls of fn() after `warmup` untimed calls, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
