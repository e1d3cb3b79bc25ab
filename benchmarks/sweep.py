"""Per-point overhead and throughput of ``sd.sweep`` on each executor (issue "Sweeps").

Workload: ``SGD`` (Gaussian gradient noise) on the W1 loss ``(x^2 - 1)^2 + 2 y^2 + 0.5 x y``
of ``benchmarks/simulate.py``, the default observables (final mean, variance, loss,
diverged fraction).

* Overhead: sweeps of ``--points`` tiny points (one particle, one step: the work is
  nothing) on each executor. The time per point is the mean time between finished points
  once the first point (run in this process) and two per worker have arrived, so the fixed
  costs (starting a pool, a worker's first import and kernel load) drop out; the overhead of
  an executor is its time per point minus the serial time in this process (the ``simulate``
  call and the reduction, the same for all). Every process runs one Numba thread here, so the
  work per point is the same everywhere. Target: below 20 ms a point on the LocalCluster. The
  serial run with a zarr ``store`` gives the cost of writing the points to disk. The total
  time of each sweep (start-up included) is printed too.
* Throughput: ``--work-points`` points of real work (``--particles`` x ``--steps`` each) on a
  LocalCluster of 1 and of 2 worker processes with one Numba thread each: points per wall
  second and per CPU second (this process and the workers), and the 2-worker speed-up
  (target >= 1.7x on a 2-core machine).

The machine may be shared: every line reports wall and CPU time and the load average
(highest of before and after). Run: ``python benchmarks/sweep.py [--points 400]
[--work-points 16] [--particles 20000] [--steps 1000] [--repeat 2] [--only overhead,throughput]``.
"""

import argparse
import logging
import os
import shutil
import tempfile
import time

import numpy as np

import sdesim as sd
from sdesim import sweeps

EXPR = "(x**2-1)**2 + 2*y**2 + 0.5*x*y"


def _load():
    return os.getloadavg()[0]


def _worker_cpu(client):
    return sum(client.run(time.process_time).values()) if client is not None else 0.0


def timed(fn, client=None, repeat=1):
    """Best-of-``repeat`` ``(wall s, CPU s of this process and the workers, load)``."""
    wall = cpu = np.inf
    load = _load()
    for _ in range(repeat):
        c0, w0, t0 = time.process_time(), _worker_cpu(client), time.perf_counter()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0 + _worker_cpu(client) - w0)
        load = max(load, _load())
    return wall, cpu, load


def tiny_sweep(loss, points, store_dir=None, **kwargs):
    lrs = np.linspace(0.05, 0.1, points)
    if store_dir is not None:                                  # a fresh store every time
        kwargs["store"] = tempfile.mkdtemp(dir=store_dir) + "/sweep.zarr"
    return sd.sweep(loss, sd.SGD, {"lr": lrs}, fixed={"batch_size": 1}, w0=[-1.0, 0.0], n_particles=1,
                    steps=1, progress=False, **kwargs)


class Clock:
    """Times at which a sweep's points reach its sink (memory or zarr), in order."""

    def __init__(self):
        self.times = []
        self.open_sink = sweeps.open_sink

    def __enter__(self):
        def timed_sink(*args):
            sink = self.open_sink(*args)
            write = sink.write

            def timed_write(index, out):
                write(index, out)
                self.times.append(time.perf_counter())
            sink.write = timed_write
            return sink
        sweeps.open_sink = timed_sink
        return self

    def __exit__(self, *exc):
        sweeps.open_sink = self.open_sink

    def per_point(self, skip):
        """Mean time between points once ``skip`` have arrived (start-up and first loads excluded)."""
        t = self.times[skip:]
        return (t[-1] - t[0]) / (len(t) - 1)


def overhead(loss, points, repeat):
    import distributed
    import numba
    print(f"Per-point time in the steady state of sweeps of {points} tiny points (1 particle x 1 step): mean time "
          "between finished points, start-up excluded; overhead: minus the serial time")
    print(f"  {'executor':34s} {'ms/point':>9s} {'overhead':>9s}  {'total s':>7s}  load")
    threads = numba.get_num_threads()
    numba.set_num_threads(1)           # one Numba thread everywhere: the same work per point on every executor
    tiny_sweep(loss, 2)                                        # compile or load the kernels
    store = tempfile.mkdtemp(prefix="sdesim-bench-")

    def measure(label, n=1, **kwargs):
        best, total, load = np.inf, np.inf, _load()
        for _ in range(repeat):
            with Clock() as clock:
                t0 = time.perf_counter()
                tiny_sweep(loss, points, **kwargs)
                total = min(total, time.perf_counter() - t0)
            best = min(best, clock.per_point(skip=1 + 2 * n))
            load = max(load, _load())
        return label, best, total, load

    rows = [measure("serial (this process)")]
    rows.append(measure("serial, zarr store", store_dir=store))
    for n in (1, 2):
        rows.append(measure(f"processes, {n} worker(s)", n, executor="processes", workers=n, numba_threads=1))
    for n in (1, 2):
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
            tiny_sweep(loss, 4, executor=client)               # workers import sdesim and load the kernels
            rows.append(measure(f"dask LocalCluster, {n} worker(s)", n, executor=client, numba_threads=1))
    shutil.rmtree(store, ignore_errors=True)
    numba.set_num_threads(threads)
    base = rows[0][1]
    for label, per, total, load in rows:
        print(f"  {label:34s} {1e3 * per:9.2f} {1e3 * (per - base):9.2f}  {total:7.2f}  {load:4.1f}")


def throughput(loss, n_points, particles, steps, repeat):
    import distributed
    lrs = np.linspace(0.05, 0.1, n_points)
    print(f"Throughput: {n_points} points of {particles} particles x {steps} steps, one Numba thread per worker")

    def run(client):
        return sd.sweep(loss, sd.SGD, {"lr": lrs}, fixed={"batch_size": 4}, w0=[-1.0, 0.0], n_particles=particles,
                        steps=steps, executor=client, numba_threads=1, progress=False)

    rates = {}
    for n in (1, 2):
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
            run(client)                                        # warm: imports and kernels in every worker
            wall, cpu, load = timed(lambda: run(client), client, repeat)
        rates[n] = n_points / wall
        print(f"  LocalCluster, {n} worker(s): {wall:6.2f} s wall, {cpu:6.2f} s CPU: {n_points / wall:6.2f} points/s, "
              f"{n_points / cpu:6.2f} points/CPU-s, load {load:4.1f}")
    print(f"  speed-up of 2 workers over 1: {rates[2] / rates[1]:.2f}x (target >= 1.7x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=400, help="tiny points of the overhead sweeps")
    parser.add_argument("--work-points", type=int, default=16)
    parser.add_argument("--particles", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", default="overhead,throughput")
    args = parser.parse_args()
    import numba
    print(f"{os.cpu_count()} CPUs, numba {numba.__version__} ({numba.get_num_threads()} threads here), "
          f"load average {_load():.2f}")
    loss = sd.Loss(EXPR)
    if "overhead" in args.only:
        overhead(loss, args.points, args.repeat)
    if "throughput" in args.only:
        throughput(loss, args.work_points, args.particles, args.steps, args.repeat)


if __name__ == "__main__":
    main()
