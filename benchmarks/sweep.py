"""Per-point overhead and throughput of ``sd.sweep`` on each executor (issue "Sweeps").

Workload: ``SGD`` (Gaussian gradient noise) on the W1 loss ``(x^2 - 1)^2 + 2 y^2 + 0.5 x y``
of ``benchmarks/simulate.py``, the default observables (final mean, variance, loss,
diverged fraction).

* Overhead: sweeps of ``P1`` and ``P2`` tiny points (one particle, one step: the work is
  nothing) on each executor. The time per point is the slope ``(T(P2) - T(P1)) / (P2 - P1)``,
  so the fixed costs (starting a pool, a worker's first import and kernel load, the first
  point run in this process) drop out; the overhead of an executor is its slope minus the
  serial slope in this process (the ``simulate`` call and the reduction, the same for all).
  Every process runs one Numba thread here, so the work per point is the same everywhere.
  Target: below 20 ms a point on the LocalCluster. The serial run with a zarr ``store``
  gives the cost of writing each point to disk.
* Throughput: ``--work-points`` points of real work (``--particles`` x ``--steps`` each) on a
  LocalCluster of 1 and of 2 worker processes with one Numba thread each: points per wall
  second and per CPU second (this process and the workers), and the 2-worker speed-up
  (target >= 1.7x on a 2-core machine).

The machine may be shared: every line reports wall and CPU time and the load average
(highest of before and after). Run: ``python benchmarks/sweep.py [--points 100,300]
[--work-points 16] [--particles 20000] [--steps 1000] [--repeat 2]``.
"""

import argparse
import logging
import os
import shutil
import tempfile
import time

import numpy as np

import sdesim as sd

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


def overhead(loss, p1, p2, repeat):
    import distributed
    print(f"Per-point time: slope of wall time between sweeps of {p1} and {p2} tiny points "
          "(1 particle x 1 step), minus the serial slope")
    print(f"  {'executor':34s} {'ms/point':>9s} {'overhead':>9s} {'CPU ms/pt':>10s}  {'fixed s':>7s}  load")

    def slope(label, client=None, **kwargs):
        a = timed(lambda: tiny_sweep(loss, p1, **kwargs), client, repeat)
        b = timed(lambda: tiny_sweep(loss, p2, **kwargs), client, repeat)
        per = (b[0] - a[0]) / (p2 - p1)
        per_cpu = (b[1] - a[1]) / (p2 - p1)
        return label, per, per_cpu, a[0] - p1 * per, max(a[2], b[2])

    import numba
    threads = numba.get_num_threads()
    numba.set_num_threads(1)           # one Numba thread everywhere: the same work per point on every executor
    tiny_sweep(loss, 2)                                        # compile or load the kernels
    rows = [slope("serial (this process)")]
    base = rows[0][1]
    store = tempfile.mkdtemp(prefix="sdesim-bench-")
    rows.append(slope("serial, zarr store", store_dir=store))
    for n in (1, 2):
        rows.append(slope(f"processes, {n} worker(s)", executor="processes", workers=n, numba_threads=1))
    for n in (1, 2):
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
            tiny_sweep(loss, 4, executor=client)               # workers import sdesim and load the kernels
            rows.append(slope(f"dask LocalCluster, {n} worker(s)", client, executor=client, numba_threads=1))
    shutil.rmtree(store, ignore_errors=True)
    numba.set_num_threads(threads)
    for label, per, per_cpu, fixed, load in rows:
        print(f"  {label:34s} {1e3 * per:9.2f} {1e3 * (per - base):9.2f} {1e3 * per_cpu:10.2f}  {fixed:7.2f}  {load:4.1f}")


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
    parser.add_argument("--points", default="100,300", help="P1,P2 tiny points of the overhead slope")
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
        p1, p2 = (int(p) for p in args.points.split(","))
        overhead(loss, p1, p2, args.repeat)
    if "throughput" in args.only:
        throughput(loss, args.work_points, args.particles, args.steps, args.repeat)


if __name__ == "__main__":
    main()
