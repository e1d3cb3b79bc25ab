"""Worker process for ``test_properties.py``: runs ``sd.simulate`` cases sent as JSON lines.

Protocol (one JSON object per line, NaN/Infinity allowed as Python's ``json`` writes them):

- on start the worker imports sdesim and writes ``{"ready": true, "pid": ...}``;
- each line read from stdin is ``{"id": k, "case": {...}}`` (see :func:`run_case`);
  the answer is ``{"id": k, "status": "ok", ...}`` (shapes, divergence and the
  violations of the documented output contract) or ``{"id": k, "status": "raised",
  "mro": [...], "message": ..., "traceback": ...}``.

The protocol runs on a private copy of the original stdout: file descriptor 1 is
pointed at stderr so nothing the library (or Numba) prints can corrupt an answer.
``faulthandler`` writes the Python stack of a crash (segfault, abort) to stderr,
which the test shows when the worker dies.

Run as a script: ``python tests/_api_worker.py``. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import time
import traceback
import warnings

# the fixed losses: built once each, so generated kernels are compiled once per worker
LOSS_NAMES = ("dw2", "dw1", "fs1", "fs2", "qm2", "qm3", "catalog_dw")


def _finite_sum_data(n, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.7 * x - 0.2 + 0.3 * rng.normal(size=n)
    return {"x": x, "y": y}


def make_loss(name):
    import sdesim as sd
    if name == "dw2":
        return sd.Loss("(x**2 - 1)**2 + y**2")
    if name == "dw1":
        return sd.Loss("(x**2 - 1)**2 + 0.25*x")
    if name == "fs1":          # 7 samples, 1 parameter
        return sd.FiniteSumLoss("0.5*(a*x - y)**2", params=("a",), data=_finite_sum_data(7, 1))
    if name == "fs2":          # 12 samples, 2 parameters, nonlinear in them
        return sd.FiniteSumLoss("0.5*(a*x + b - y)**2 + 0.05*a**2*b**2", params=("a", "b"),
                                data=_finite_sum_data(12, 2))
    if name == "qm2":          # no noise covariance
        return sd.QuadraticModel(hessian=[[2.0, 0.3], [0.3, 0.5]], w_star=[0.1, -0.2])
    if name == "qm3":          # noise covariance that does not commute with H
        return sd.QuadraticModel(hessian=[[1.5, 0.2, 0.0], [0.2, 0.8, 0.1], [0.0, 0.1, 0.3]],
                                 noise_covariance=[[1.0, 0.4, 0.0], [0.4, 0.6, 0.1], [0.0, 0.1, 0.2]],
                                 w_star=[0.0, 0.5, -0.5])
    if name == "catalog_dw":
        return sd.catalog.double_well()
    raise KeyError(name)


_LOSSES: dict = {}


def loss_of(name):
    if name not in _LOSSES:
        _LOSSES[name] = make_loss(name)
    return _LOSSES[name]


def _array(value):
    """JSON lists back to float arrays (``None`` and strings pass through)."""
    import numpy as np
    if value is None or isinstance(value, str):
        return value
    return np.asarray(value, dtype=float)


def build_dynamic(spec):
    import sdesim as sd
    kwargs = dict(spec.get("kwargs", {}))
    for key in ("noise_covariance", "noise_factor"):
        if key in kwargs:
            kwargs[key] = _array(kwargs[key])
    return getattr(sd, spec["type"])(**kwargs)


def run_case(case):
    """Run one case; returns the answer dict (without ``id``).

    ``case``: ``loss`` (a name of :data:`LOSS_NAMES`), ``dynamic`` (``{"type", "kwargs"}``),
    ``w0`` (nested list), and the keyword arguments of ``simulate``: ``n_particles``,
    ``steps``, ``t_end``, ``dt``, ``record_every``, ``backend``, ``integrator``, ``seed``.
    Building the loss is not part of the case (the losses are fixed and valid); building
    the dynamic is.
    """
    import sdesim as sd

    loss = loss_of(case["loss"])
    caught = []
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dynamic = build_dynamic(case["dynamic"])
            res = sd.simulate(loss, dynamic, _array(case["w0"]), n_particles=case["n_particles"],
                              steps=case.get("steps"), t_end=case.get("t_end"), dt=case.get("dt"),
                              record_every=case.get("record_every", 1), backend=case["backend"],
                              integrator=case.get("integrator"), seed=case["seed"])
    except Exception as exc:  # noqa: BLE001 - the test judges the type
        return {"status": "raised",
                "mro": [f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__],
                "message": str(exc),
                "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:],
                "warnings": _warnings(caught),
                "seconds": time.perf_counter() - start}
    answer = {"status": "ok", "seconds": time.perf_counter() - start, "dim": int(loss.dim),
              "warnings": _warnings(caught)}
    answer.update(describe_result(res))
    return answer


def _warnings(caught):
    seen = []
    for w in caught or ():
        item = [f"{w.category.__module__}.{w.category.__qualname__}", str(w.message)[:300]]
        if item not in seen:
            seen.append(item)
    return seen


def describe_result(res):
    """Shapes of a Result and the violations of its documented contract.

    Contract: ``t (T,)``, ``w (T, N, dim)``, ``loss (T, N)``, ``diverged_at (N,)``; a
    particle's state and loss are finite, except for a particle that diverged
    (``diverged_at[p] = k >= 0``), whose state and loss are NaN (never +-inf) in
    every record at a step ``>= k``.
    """
    import numpy as np
    out = {}
    problems = []
    for name in ("t", "w", "loss", "diverged_at"):
        value = getattr(res, name, None)
        out[f"{name}_shape"] = None if value is None else list(np.shape(value))
    meta = getattr(res, "metadata", {}) or {}
    out["n_steps"] = meta.get("n_steps")
    out["dt"] = meta.get("dt")
    try:
        w = np.asarray(res.w, dtype=float)
        values = np.asarray(res.loss, dtype=float)
        t = np.asarray(res.t, dtype=float)
        div = np.asarray(res.diverged_at)
    except Exception as exc:  # noqa: BLE001
        return {**out, "problems": [f"result arrays unreadable: {type(exc).__name__}: {exc}"]}
    if w.ndim != 3 or values.shape != w.shape[:2] or t.shape != w.shape[:1] or div.shape != w.shape[1:2]:
        return {**out, "problems": ["inconsistent shapes"]}
    out["n_diverged"] = int((div >= 0).sum())
    if np.isinf(w).any():
        problems.append("w holds +-inf")
    if np.isinf(values).any():
        problems.append("loss holds +-inf")
    if len(t) and not np.all(np.isfinite(t)):
        problems.append("t holds non-finite times")
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        problems.append("t is not increasing")
    finite_row = np.isfinite(w).all(axis=2)                     # (T, N)
    nan_row = np.isnan(w).all(axis=2)
    if (~finite_row & ~nan_row).any():
        problems.append("a recorded state is partly NaN")
    dt, n_steps = meta.get("dt"), meta.get("n_steps")
    if dt and len(t):
        steps = np.rint(t / dt).astype(np.int64)[:, None]       # (T, 1) step of each record
        dead = (div[None, :] >= 0) & (steps >= div[None, :])    # where NaN is allowed and required
    else:
        dead = np.broadcast_to(div[None, :] >= 0, finite_row.shape)
    if (~finite_row & ~dead).any():
        T_bad, p_bad = np.argwhere(~finite_row & ~dead)[0]
        problems.append(f"non-finite state of particle {p_bad} at record {T_bad} (t={t[T_bad]:g}) "
                        f"that had not diverged (diverged_at={int(div[p_bad])})")
    if (finite_row & dead).any():
        T_bad, p_bad = np.argwhere(finite_row & dead)[0]
        problems.append(f"finite state of particle {p_bad} at record {T_bad} after its divergence "
                        f"at step {int(div[p_bad])}")
    if (~np.isfinite(values) & finite_row).any():
        problems.append("non-finite loss value at a finite state")
    if (np.isfinite(values) & ~finite_row).any():
        problems.append("finite loss value at a non-finite state")
    if n_steps is not None and len(t) and dt:
        if not np.isclose(t[-1], n_steps * dt, rtol=1e-9, atol=1e-12 * abs(dt)):
            problems.append(f"last record at t={t[-1]:g}, not at n_steps * dt = {n_steps * dt:g}")
    out["problems"] = problems
    return out


def main():
    faulthandler.enable(file=sys.stderr, all_threads=True)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                 # stray prints (library, Numba) go to stderr
    sys.stdout = sys.stderr
    import numpy  # noqa: F401
    import sdesim  # noqa: F401
    proto.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        print(f"[worker] case {request['id']}", file=sys.stderr, flush=True)
        try:
            answer = run_case(request["case"])
        except Exception as exc:  # noqa: BLE001 - a fault of the harness, not of the case
            answer = {"status": "harness_error", "message": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc()[-4000:]}
        answer["id"] = request["id"]
        proto.write(json.dumps(answer) + "\n")
        proto.flush()


if __name__ == "__main__":
    main()
