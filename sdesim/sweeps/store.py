"""Where a sweep's points go: memory, or a zarr store written point by point.

The output of a sweep has one dimension per swept name (zipped names share one), then
``seed``, then each variable's own dimensions. :class:`Layout` holds that shape and
assembles the ``xarray.Dataset``; :class:`Memory` and :class:`ZarrStore` receive the
points as they finish.

A zarr store (format 2, consolidated metadata: ``xr.open_zarr(path)`` reads it) holds
every variable, in chunks of up to 1024 points (:func:`chunking`), a boolean ``done`` per
point, and the sweep's configuration in the attribute ``sweep``. Finished points are
written together at most a second apart (:data:`FLUSH_SECONDS`), at the end, and when
the sweep stops (Ctrl-C, an error): values first, ``done`` flags last, each chunk
atomically (a file written aside and renamed), with Ctrl-C held off while writing. An
interrupted sweep leaves every finished point on disk, and ``resume=True`` recomputes
only the points not ``done``.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdesim.errors import ConfigError, FormatError, ShapeError

#: Finished points are written together, at most this many seconds apart (and at the end, or on Ctrl-C).
FLUSH_SECONDS = 1.0


@dataclass
class Layout:
    """Dimensions, coordinates and variables of a sweep's dataset."""

    grid_dims: tuple
    grid_shape: tuple
    grid_coords: dict       # name -> (dim, values)
    variables: dict         # name -> its own dims
    dim_coords: dict        # own dim -> values

    def shape(self, name) -> tuple:
        return self.grid_shape + tuple(len(self.dim_coords[d]) for d in self.variables[name])

    def dataset(self, arrays: dict, attrs: dict):
        """The ``xarray.Dataset`` of the arrays ``{name: grid_shape + own shape}``."""
        xr = import_xarray()
        coords = {**{n: (d, v) for n, (d, v) in self.grid_coords.items()},
                  **{d: (d, v) for d, v in self.dim_coords.items()}}
        data = {n: (self.grid_dims + dims, arrays[n]) for n, dims in self.variables.items()}
        return xr.Dataset(data, coords=coords, attrs=dict(attrs))


def import_xarray():
    try:
        import xarray
    except ImportError as exc:
        raise ImportError('sweeps return xarray datasets: pip install "sdesim[dist]"') from exc
    return xarray


class Memory:
    """Points kept in memory: one array per variable, NaN until its point is written."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.data = {n: np.full(layout.shape(n), np.nan) for n in layout.variables}
        self.done = np.zeros(layout.grid_shape, bool)

    def write(self, index: int, out: dict):
        pos = np.unravel_index(index, self.layout.grid_shape)
        for name, value in _checked(self.layout, out).items():
            self.data[name][pos] = value
        self.done[pos] = True

    def flush(self):
        pass

    def arrays(self) -> dict:
        return self.data


class ZarrStore(Memory):
    """Points written to a zarr store as they finish (module docstring)."""

    def __init__(self, path, layout: Layout, attrs: dict, resume: bool = False):
        self.layout, self.path = layout, Path(path)
        try:
            import zarr
        except ImportError as exc:
            raise ImportError('store= needs zarr: pip install "sdesim[dist]"') from exc
        if self.path.exists():
            if not resume:
                raise ConfigError(f"{self.path} exists: pass resume=True (sdesim run --resume) to complete "
                                  "the sweep it holds, or remove it (or choose another store)")
            try:
                self.group = zarr.open_group(str(self.path), mode="r+")
            except Exception as exc:  # noqa: BLE001 (zarr's errors differ between versions)
                raise FormatError(f"{self.path} is not a zarr store: {exc}") from None
            self._check_same(attrs)
        else:
            self._create(attrs)
            self.group = zarr.open_group(str(self.path), mode="r+")
        self.arrays_ = {n: self.group[n] for n in layout.variables}
        self.flags = self.group["done"]
        self.done = np.asarray(self.flags[...], dtype=bool)
        self.pending, self.flushed = [], time.monotonic()

    def _create(self, attrs):
        lay = self.layout
        chunks = {n: chunking(lay.grid_shape, lay.shape(n)[len(lay.grid_shape):]) for n in lay.variables}
        try:
            import dask.array as da
            full = lambda n: da.full(lay.shape(n), np.nan, chunks=chunks[n])
            flags = da.zeros(lay.grid_shape, dtype=bool, chunks=-1)
        except ImportError:                      # without dask: empty chunks are not written either
            full = lambda n: np.full(lay.shape(n), np.nan)
            flags = np.zeros(lay.grid_shape, bool)
        template = lay.dataset({n: full(n) for n in lay.variables}, attrs)
        template["done"] = (lay.grid_dims, flags)
        encoding = {n: {"chunks": chunks[n]} for n in lay.variables}
        encoding["done"] = {"chunks": lay.grid_shape}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        template.to_zarr(str(self.path), mode="w-", compute=False, zarr_format=2, consolidated=True,
                         encoding=encoding)

    def _check_same(self, attrs):
        stored = self.group.attrs.get("sweep")
        if stored is None or "done" not in self.group:
            raise FormatError(f"{self.path} is not a sweep store (no 'sweep' attribute or 'done' array)")
        old, new = json.loads(stored), json.loads(attrs["sweep"])
        if old != new:
            key = next(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
            raise ConfigError(f"{self.path} holds a different sweep ({key}: {old.get(key)!r} there, "
                              f"{new.get(key)!r} here): resume it with the same configuration, or "
                              "choose another store")
        for name in self.layout.variables:
            if name not in self.group or self.group[name].shape != self.layout.shape(name):
                raise FormatError(f"{self.path}: variable {name!r} is missing or has another shape")

    def write(self, index: int, out: dict):
        """Queue a finished point; points are written together at most ``FLUSH_SECONDS`` apart."""
        self.pending.append((index, _checked(self.layout, out)))
        if time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self):
        """Write the queued points: their values, then their ``done`` flags (Ctrl-C waits for it)."""
        if not self.pending:
            return
        g = len(self.layout.grid_shape)
        pos = np.array([np.unravel_index(i, self.layout.grid_shape) for i, _ in self.pending])      # (k, g)
        with _hold_interrupts():
            for name, array in self.arrays_.items():
                values = np.stack([v[name] for _, v in self.pending])                               # (k, *own)
                own = values.shape[1:]
                cells = np.indices(own).reshape(len(own), -1) if own else np.zeros((0, 1), int)     # (o, m)
                m = cells.shape[1]
                where = [np.repeat(pos[:, d], m) for d in range(g)] + [np.tile(c, len(pos)) for c in cells]
                array.vindex[tuple(where)] = values.reshape(-1)
            self.flags.vindex[tuple(pos.T)] = True   # last: a point is done once all of it is on disk
        self.done[tuple(pos.T)] = True
        self.pending.clear()
        self.flushed = time.monotonic()

    def arrays(self) -> dict:
        self.flush()
        return {n: np.asarray(a[...], dtype=float) for n, a in self.arrays_.items()}


def chunking(grid_shape, own_shape, points=1024, nbytes=2**20) -> tuple:
    """Chunks of a variable: whole trailing grid dimensions (seeds first), at most ``points`` points
    and ``nbytes`` bytes a chunk; a variable's own dimensions are never split."""
    per_point = 8 * int(np.prod(own_shape))
    limit = max(1, min(points, nbytes // per_point))
    chunk = list(grid_shape)
    for d in range(len(chunk)):
        if int(np.prod(chunk)) <= limit:
            break
        rest = int(np.prod(chunk[d + 1:]))
        chunk[d] = max(1, limit // rest) if rest <= limit else 1
    return tuple(chunk) + tuple(own_shape)


def _checked(layout, out) -> dict:
    values = {}
    for name in layout.variables:
        if name not in out:
            raise ShapeError(f"an observable returned no {name!r}")
        v = np.asarray(out[name], dtype=float)
        want = layout.shape(name)[len(layout.grid_shape):]
        if v.shape != want:
            raise ShapeError(f"{name!r} has shape {v.shape}, its dimensions "
                             f"{layout.variables[name]} give {want}")
        values[name] = v
    return values


@contextmanager
def _hold_interrupts():
    """Defer Ctrl-C (SIGINT) until the block is done (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if previous is signal.default_int_handler:
                raise KeyboardInterrupt
            if callable(previous):
                previous(signal.SIGINT, caught[0])


def open_sink(store, layout, attrs, resume):
    """``Memory`` when ``store`` is None, else a ``ZarrStore`` at that path."""
    if store is None:
        if resume:
            raise ConfigError("resume=True needs store= (the path of the sweep to resume)")
        return Memory(layout)
    if not isinstance(store, (str, Path)):
        raise ConfigError(f"store must be a path (a folder ending in .zarr), got {store!r}")
    return ZarrStore(store, layout, attrs, resume)
