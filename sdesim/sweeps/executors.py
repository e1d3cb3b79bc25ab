"""Where a sweep's points run: in this process, a local process pool, or a Dask cluster.

Every executor yields ``(index, values)`` as points finish, in any order: the values
of a point depend on the point alone, so the dataset does not depend on the executor,
the number of workers or the order. Workers receive the sweep's :class:`Spec` once
(cloudpickle), run each point with :meth:`Spec.run`, and load the kernels that the
parent compiled before dispatching from Numba's on-disk cache. Each worker runs Numba
with ``cores // workers`` threads (at least one), so workers do not oversubscribe the
cores.

- ``"serial"``: this process, in order;
- ``"processes"``: a ``concurrent.futures`` pool of ``workers`` spawned processes (default:
  one per core); a pool that breaks (a worker killed) is restarted and its unfinished points
  run again, up to three times;
- ``"dask"``: a ``dask.distributed.LocalCluster`` of ``workers`` processes with one thread each;
- a ``dask.distributed.Client``, or a scheduler address (``"tcp://host:8786"``): that cluster.
  Dask reruns the points of a worker that dies (``distributed.scheduler.allowed-failures``).
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from sdesim.errors import ConfigError, SdesimError

NAMES = ("serial", "processes", "dask")
POOL_RESTARTS = 3
_SPEC = None


def check(executor, workers=None, numba_threads=None):
    """Raise ``ConfigError`` for an executor, worker count or thread count that cannot be used."""
    for name, value in (("workers", workers), ("numba_threads", numba_threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(executor, str):
        if executor in NAMES or "://" in executor or _is_host_port(executor):
            if executor not in ("serial", "processes"):
                _import_distributed()
            if executor == "serial" and workers not in (None, 1):
                raise ConfigError(f"executor='serial' runs one point at a time: workers={workers} does not apply")
            return
        raise ConfigError(f"executor must be one of {NAMES}, a dask.distributed.Client or a scheduler address "
                          f"such as 'tcp://127.0.0.1:8786', got {executor!r}")
    if not _is_client(executor):
        raise ConfigError(f"executor must be one of {NAMES}, a dask.distributed.Client or a scheduler address, "
                          f"got {executor!r}")


def start(executor, workers=None, numba_threads=None):
    """The executor object for ``executor`` (see :func:`check`); use it as a context manager."""
    if executor == "serial":
        return Serial()
    if executor == "processes":
        return Processes(workers or os.cpu_count() or 1, numba_threads)
    return Dask(executor, workers, numba_threads)


def run_point(spec, index, threads=None):
    """Run one point in a worker, with ``threads`` Numba threads."""
    if threads:
        import numba
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    return spec.run(index)    # threads may share a process: kernels launch through sdesim._threading.launch


class Serial:
    """This process, point after point."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, spec, indices):
        for i in indices:
            yield i, spec.run(i)


def _init_process(payload, threads):
    global _SPEC
    import cloudpickle
    _SPEC = cloudpickle.loads(payload)
    import numba
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _run_in_process(index):
    return _SPEC.run(index)


class Processes:
    """A pool of spawned processes (module docstring)."""

    def __init__(self, workers, numba_threads=None):
        self.workers = int(workers)
        self.threads = numba_threads or max(1, (os.cpu_count() or 1) // self.workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, spec, indices):
        import multiprocessing

        import cloudpickle
        payload = cloudpickle.dumps(spec)
        pending = list(indices)
        for attempt in range(POOL_RESTARTS + 1):
            if not pending:
                return
            pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_process, initargs=(payload, self.threads))
            futures = {pool.submit(_run_in_process, i): i for i in pending}
            finished = set()
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    out = fut.result()
                    finished.add(i)
                    yield i, out
                pool.shutdown(wait=True)
                return
            except BrokenProcessPool:
                pending = [i for i in pending if i not in finished]
                if attempt == POOL_RESTARTS:
                    raise SdesimError(f"the process pool broke {POOL_RESTARTS + 1} times (a worker died); "
                                      f"{len(pending)} points were not run") from None
            finally:
                pool.shutdown(wait=False, cancel_futures=True)


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError('the Dask executors need dask.distributed: pip install "sdesim[dist]"') from exc
    return distributed


def _is_client(obj):
    try:
        from distributed import Client
    except ImportError:
        return False
    return isinstance(obj, Client)


def _is_host_port(text):
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit()


def _load_spec(payload):
    import cloudpickle
    return cloudpickle.loads(payload)


class Dask:
    """A Dask cluster: a new ``LocalCluster``, a scheduler address, or a ``Client`` (module docstring)."""

    def __init__(self, executor, workers=None, numba_threads=None):
        distributed = _import_distributed()
        self.cluster = None
        self.own_client = not _is_client(executor)
        cores = os.cpu_count() or 1
        if executor == "dask":
            import logging
            n = workers or cores
            self.cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                    dashboard_address=None, silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
            self.threads = numba_threads or max(1, cores // n)
        else:
            if workers is not None:
                raise ConfigError(f"workers={workers} applies to executor='processes' or 'dask'; an existing "
                                  "cluster has its own workers")
            self.client = distributed.Client(executor) if self.own_client else executor
            self.threads = numba_threads or self._threads_per_worker()

    def _threads_per_worker(self):
        """``cores // (threads of the workers on its host)`` for the most crowded host."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        cpus = self.client.run(os.cpu_count)
        busy = {}
        for w in workers.values():
            busy[w["host"]] = busy.get(w["host"], 0) + w["nthreads"]
        per = [max(1, (cpus.get(a) or 1) // busy[w["host"]]) for a, w in workers.items()]
        return min(per) if per else 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False

    def map(self, spec, indices):
        import cloudpickle
        from distributed import as_completed as dask_completed
        token = uuid.uuid4().hex[:10]
        spec_future = self.client.submit(_load_spec, cloudpickle.dumps(spec), key=f"sweep-spec-{token}")
        futures = {self.client.submit(run_point, spec_future, int(i), self.threads,
                                      key=f"sweep-point-{token}-{int(i)}"): int(i) for i in indices}
        try:
            for fut, out in dask_completed(list(futures), with_results=True):
                yield futures[fut], out
                fut.release()
        finally:
            self.client.cancel([f for f in futures if not f.done()] + [spec_future])
