"""``Result``: what a simulation returns, with one array layout ``(time, particle, dim)``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sdesim.backends.base import array_namespace, host_array
from sdesim.errors import ConfigError, FormatError
from sdesim.io import load_npz

FORMAT = "sdesim.Result"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Result:
    """Trajectories of an ensemble.

    ``w`` and ``loss`` are NumPy arrays, or the backend's device arrays after
    ``simulate(..., device_arrays=True)``: :meth:`mean` and :meth:`covariance` then compute on
    the device, :meth:`save`, :meth:`to_xarray` and the summary copy to the host, and
    :meth:`on_host` gives the NumPy result that plots and analyses need.

    Attributes
    ----------
    t : (T,) array
        Recorded times, ``t = k * lr`` for discrete dynamics.
    w : (T, N, dim) array
        Recorded states. A particle that diverged holds NaN from its first
        non-finite record on (see ``diverged_at``).
    loss : (T, N) array
        Loss at the recorded states.
    metadata : dict
        Everything needed to rerun: loss, dynamic, settings, seed, backend.
    diverged_at : (N,) int array
        Step at which each particle diverged, ``-1`` if it never did.
    reduced : dict
        Outputs of streaming reducers, ``{reducer name: {key: array}}``.
    """

    t: np.ndarray
    w: np.ndarray
    loss: np.ndarray
    metadata: dict = field(default_factory=dict)
    diverged_at: np.ndarray | None = None
    reduced: dict = field(default_factory=dict)

    @property
    def n_particles(self) -> int:
        return self.w.shape[1]

    @property
    def dim(self) -> int:
        return self.w.shape[2]

    @property
    def label(self) -> str:
        return self.metadata.get("label", "")

    @property
    def diverged(self) -> np.ndarray:
        """Boolean mask ``(N,)`` of particles that diverged."""
        if self.diverged_at is None:
            return np.zeros(self.n_particles, bool)
        return self.diverged_at >= 0

    @property
    def final(self) -> np.ndarray:
        """Final states ``(N, dim)``."""
        return self.w[-1]

    def broadcast(self, n: int) -> "Result":
        """This one-particle result (a deterministic lens) as ``n`` identical particles (read-only views)."""
        if self.n_particles != 1:
            raise ConfigError(f"broadcast repeats a one-particle result; this one has {self.n_particles}")
        T, _, dim = self.w.shape
        diverged = None if self.diverged_at is None else np.repeat(self.diverged_at, n)
        return replace(self, w=np.broadcast_to(self.w, (T, n, dim)), loss=np.broadcast_to(self.loss, (T, n)),
                       diverged_at=diverged)

    def on_host(self) -> Result:
        """This result with ``w`` and ``loss`` as NumPy arrays: copied from the device after
        ``simulate(..., device_arrays=True)``, else the result itself."""
        if isinstance(self.w, np.ndarray) and isinstance(self.loss, np.ndarray):
            return self
        return replace(self, w=host_array(self.w), loss=host_array(self.loss))

    def _survivors(self):
        """``w`` of the surviving particles, in ``w``'s array module."""
        return self.w[:, array_namespace(self.w).asarray(~self.diverged)]

    def mean(self) -> np.ndarray:
        """Ensemble mean over surviving particles, ``(T, dim)``."""
        return self._survivors().mean(axis=1)

    def covariance(self) -> np.ndarray:
        """Ensemble covariance over surviving particles, ``(T, dim, dim)`` (unbiased)."""
        w = self._survivors()
        d = w - w.mean(axis=1, keepdims=True)
        return array_namespace(w).einsum("tni,tnj->tij", d, d) / max(w.shape[1] - 1, 1)

    def save(self, path) -> Path:
        """Write ``.npz`` with the arrays and the metadata as a JSON string."""
        path, host = Path(path), self.on_host()
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.metadata}
        reduced = {f"reduced/{name}/{key}": np.asarray(v)
                   for name, out in self.reduced.items() for key, v in out.items()}
        np.savez_compressed(path, t=self.t, w=host.w, loss=host.loss, **reduced,
                            diverged_at=self.diverged_at if self.diverged_at is not None
                            else np.full(self.n_particles, -1),
                            metadata=np.array(json.dumps(meta, default=_jsonable)))
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path) -> "Result":
        """Read a file written by :meth:`save` (`FormatError` naming the path if it is not one)."""
        data = load_npz(path)
        meta = data.check_format(FORMAT, FORMAT_VERSION)
        reduced = {}
        for key in data:
            if key.startswith("reduced/"):
                name, _, item = key[len("reduced/"):].partition("/")
                reduced.setdefault(name, {})[item] = data[key]
        t, w, loss, diverged_at = data["t"], data["w"], data["loss"], data["diverged_at"]
        if w.ndim != 3 or t.shape != w.shape[:1] or loss.shape != w.shape[:2] or diverged_at.shape != w.shape[1:2]:
            raise FormatError(f"{data.path}: inconsistent shapes t {t.shape}, w {w.shape}, loss {loss.shape}, "
                              f"diverged_at {diverged_at.shape} (expected (T,), (T, N, dim), (T, N), (N,))")
        return cls(t=t, w=w, loss=loss, metadata=meta, diverged_at=diverged_at, reduced=reduced)

    def summary(self) -> dict:
        """A few numbers that describe the run: label, sizes, times, final mean loss, diverged count."""
        alive = ~self.diverged
        final_loss = host_array(self.loss[-1])[alive]
        return {"label": self.label, "particles": self.n_particles, "dim": self.dim,
                "records": len(self.t), "t": (float(self.t[0]), float(self.t[-1])),
                "final mean loss": float(final_loss.mean()) if final_loss.size else float("nan"),
                "diverged": int((~alive).sum()), "backend": self.metadata.get("backend"),
                "stepper": self.metadata.get("stepper"), "seed": self.metadata.get("seed")}

    def __repr__(self) -> str:
        s = self.summary()
        return (f"Result({s['label']!r}: {s['particles']} particles x {s['dim']} dims, {s['records']} records "
                f"t = {s['t'][0]:g}..{s['t'][1]:g}, final mean loss {s['final mean loss']:.4g}, "
                f"{s['diverged']} diverged)")

    def _repr_html_(self) -> str:
        """The summary as a small table (Jupyter)."""
        from html import escape
        rows = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
                       for k, v in self.summary().items())
        return f"<table><caption>sdesim.Result</caption>{rows}</table>"

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims ``(time, particle, dim)`` (needs xarray)."""
        try:
            import xarray as xr
        except ImportError as exc:
            raise ImportError("to_xarray needs xarray: pip install xarray") from exc
        host = self.on_host()
        names = self.metadata.get("variables") or [f"w{i}" for i in range(self.dim)]
        return xr.Dataset(
            {"w": (("time", "particle", "dim"), host.w), "loss": (("time", "particle"), host.loss),
             "diverged_at": (("particle",), self.diverged_at)},
            coords={"time": self.t, "dim": list(names)},
            attrs={"metadata": json.dumps(self.metadata, default=_jsonable)})


def _jsonable(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return repr(obj)
