"""Diagrams over parameters: phase diagrams in (lr, B), sharpness against 2/lr,
escape time against 1/T, convergence orders."""

from __future__ import annotations

import numpy as np

from sdesim.plot.style import OKABE_ITO, legend


def phase_diagram(data, batch_sizes=None, fraction=None, ax=None, label=None, *, x="batch_size", y="lr",
                  var="fraction", xscale="auto", yscale="auto", ratios=5, cmap="cividis", vmin=None, vmax=None,
                  **select):
    """Heat map of a sweep over two of its names, with contours of constant ``lr / B``.

    ``phase_diagram(ds, x="batch_size", y="lr", var="fraction", basin=1)`` draws ``ds[var]``
    of a :func:`sdesim.sweep` dataset (or a ``DataArray``, or the ``PhaseDiagram`` of
    :func:`sdesim.analysis.phase_diagram`): keywords other than the options select along
    the remaining dimensions (``basin=1``), seeds are averaged, and zipped names (one
    dimension holding ``lr`` and ``batch_size``) are spread onto the grid. The older form
    ``phase_diagram(lrs, batch_sizes, fraction)`` draws ``fraction[i, j]`` at
    ``(lrs[i], batch_sizes[j])``.

    Cells are centred on the grid values and the edge cells have full width; an axis is
    logarithmic when its values are closer to a geometric than to an arithmetic progression
    (``xscale``/``yscale`` override: ``"log"``, ``"linear"``). With ``lr`` and
    ``batch_size`` on the axes, ``ratios`` dotted contours of constant ``lr / B``
    (constant temperature ``lr / 2B``) are drawn and labelled.
    """
    import matplotlib.pyplot as plt

    from sdesim.errors import ConfigError

    ax = ax or plt.gca()
    from_sweep = _is_xarray(data) or hasattr(data, "dataset")
    if select and not from_sweep:
        raise ConfigError(f"selections {sorted(select)} apply to a sweep's dataset, not to arrays")
    if from_sweep:
        X, Y, Z, label, default_range = _from_dataset(data, x, y, var, select, label)
    else:
        if batch_sizes is None or fraction is None:
            raise ConfigError("give a sweep's dataset, or the arrays lrs, batch_sizes, fraction")
        x, y = "batch_size", "lr"
        X, Y = np.asarray(batch_sizes), np.asarray(data)
        Z = np.asarray(fraction, float)
        if Z.shape != (len(Y), len(X)):
            raise ConfigError(f"fraction must have shape (len(lrs), len(batch_sizes)) = {(len(Y), len(X))}, "
                              f"got {Z.shape}")
        label, default_range = label or "fraction in minimum A", (0.0, 1.0)
    vmin, vmax = (default_range if vmin is None and vmax is None else (vmin, vmax))
    xs, ys = _axis_scale(X, xscale), _axis_scale(Y, yscale)
    xe, ye = _cell_edges(X, xs), _cell_edges(Y, ys)
    mesh = ax.pcolormesh(xe, ye, Z, cmap=cmap, vmin=vmin, vmax=vmax)
    plt.colorbar(mesh, ax=ax, label=label)
    names = {"batch_size": "batch size B", "lr": "learning rate lr"}
    ax.set(xscale=xs, yscale=ys, xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1]),
           xlabel=names.get(x, x), ylabel=names.get(y, y))
    for axis, values, scale in ((ax.xaxis, X, xs), (ax.yaxis, Y, ys)):
        if not np.issubdtype(np.asarray(values).dtype, np.number):
            axis.set_ticks(np.arange(len(values)), [str(v) for v in values])
        elif scale == "log":                   # ticks at the grid's values, or at 1, 2, 5 x 10^k if many
            from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator
            v = np.asarray(values, float)
            axis.set_major_locator(FixedLocator(v) if len(v) <= 8 else LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:.3g}"))
            axis.set_minor_locator(NullLocator())
    if ratios and {x, y} == {"batch_size", "lr"}:
        _lr_over_b(ax, xe, ye, xs, ys, x == "batch_size", ratios)
    return ax


def _is_xarray(data):
    return type(data).__module__.startswith("xarray")


def _from_dataset(data, x, y, var, select, label):
    """``(X, Y, Z (len Y, len X), label, colour range)`` of a sweep's dataset (see ``phase_diagram``)."""
    from sdesim.errors import ConfigError

    if not _is_xarray(data):                                # a PhaseDiagram
        if data.dataset is None:
            raise ConfigError("this PhaseDiagram holds no dataset: rerun sdesim.analysis.phase_diagram")
        data = data.dataset
    if hasattr(data, "data_vars"):
        if var not in data.data_vars:
            raise ConfigError(f"no variable {var!r} in the dataset; it has {sorted(data.data_vars)}")
        da = data[var]
    else:
        da, var = data, data.name or var
    for name in (x, y):
        if name not in da.coords:
            raise ConfigError(f"{name!r} is not a coordinate of the sweep; it has {sorted(da.coords)}")
    try:
        da = da.sel(**select)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"cannot select {select}: {exc}") from None
    shared = da[x].dims
    if da[y].dims == shared and shared[0] not in (x, y):     # zipped names: spread them onto a grid
        da = da.set_index({shared[0]: [y, x]}).unstack(shared[0])
    averaged = "seed" in da.dims and "seed" not in (x, y) and da.sizes["seed"] > 1
    if "seed" in da.dims and "seed" not in (x, y):
        da = da.mean("seed")
    extra = sorted(set(da.dims) - {x, y})
    if extra:
        d = extra[0]
        raise ConfigError(f"select or average the dimensions {extra} first, e.g. {d}="
                          f"{da[d].values[0]!r} (a keyword of phase_diagram)")
    da = da.sortby([y, x]).transpose(y, x)
    if label is None:
        chosen = ", ".join(f"{k}={v}" for k, v in select.items())
        label = var + (f" ({chosen})" if chosen else "") + (", mean over seeds" if averaged else "")
    fractions = var in ("fraction", "diverged", "unassigned") or var.endswith("_fraction")
    return da[x].values, da[y].values, np.asarray(da.values, float), label, (0.0, 1.0) if fractions else (None, None)


def _axis_scale(values, scale):
    from sdesim.errors import ConfigError

    if scale != "auto":
        if scale not in ("log", "linear"):
            raise ConfigError(f"xscale/yscale must be 'auto', 'log' or 'linear', got {scale!r}")
        return scale
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.number) or len(v) < 2 or not (v > 0).all():
        return "linear"
    v = np.sort(v.astype(float))
    if len(v) == 2:
        return "log" if v[1] / v[0] >= 10 else "linear"
    i = np.arange(len(v))

    def misfit(u):                      # distance from an arithmetic progression, relative to the range
        return np.std(u - np.polyval(np.polyfit(i, u, 1), i)) / (np.ptp(u) or 1.0)
    return "log" if misfit(np.log(v)) < misfit(v) else "linear"


def _cell_edges(values, scale):
    """Cell edges around sorted centres: midpoints, and edge cells as wide as their neighbours."""
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.number):
        return np.arange(len(v) + 1) - 0.5
    u = np.log(v.astype(float)) if scale == "log" else v.astype(float)
    if len(u) == 1:
        half = np.log(2.0) / 2 if scale == "log" else max(abs(u[0]) * 0.1, 0.5)
        e = np.array([u[0] - half, u[0] + half])
    else:
        mid = 0.5 * (u[1:] + u[:-1])
        e = np.concatenate([[u[0] - (mid[0] - u[0])], mid, [u[-1] + (u[-1] - mid[-1])]])
    return np.exp(e) if scale == "log" else e


def _lr_over_b(ax, xe, ye, xs, ys, b_on_x, n):
    """Dotted, labelled contours of constant ``lr / B`` over the drawn box."""
    grid = lambda e, s: np.geomspace(e[0], e[-1], 60) if s == "log" else np.linspace(e[0], e[-1], 60)
    XX, YY = np.meshgrid(grid(xe, xs), grid(ye, ys))
    B, LR = (XX, YY) if b_on_x else (YY, XX)
    ratio = np.ma.masked_where((B <= 0) | (LR <= 0), LR / np.where(B > 0, B, 1.0))   # linear axes may reach 0
    if ratio.count() < 2 or ratio.min() == ratio.max():
        return
    levels = np.geomspace(ratio.min(), ratio.max(), n + 2)[1:-1]
    cs = ax.contour(XX, YY, ratio, levels=levels, colors="white", linewidths=0.7, linestyles=":")
    ax.clabel(cs, fmt=lambda r: f"lr/B={r:.2g}", fontsize=7)
    ax.set_title("dotted: constant lr / B (temperature lr / 2B)", fontsize=9)


def sharpness(t, top_eigenvalue, lr, ax=None, label="sharpness"):
    """Top Hessian eigenvalue against time with the linear-stability line ``2 / lr``."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    ax.plot(t, top_eigenvalue, color=OKABE_ITO[0], label=label)
    ax.axhline(2.0 / lr, color="k", ls="--", lw=1, label=f"2 / lr = {2.0 / lr:g}")
    ax.set(xlabel="t = k lr", ylabel=r"$\lambda_{max}(\nabla^2 C)$")
    legend(ax)
    return ax


def escape_times(temperatures, measured, errors=None, theory: dict | None = None, ax=None):
    """Mean escape time against ``1/T`` (log scale) with error bars and theory curves."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    inv = 1.0 / np.asarray(temperatures, float)
    ax.errorbar(inv, measured, yerr=errors, fmt="o", color=OKABE_ITO[1], label="simulated", capsize=2)
    for (label, values), style in zip((theory or {}).items(), ["k-", "k--", "k:"]):
        ax.plot(inv, values, style, lw=1, label=label)
    ax.set(yscale="log", xlabel="1 / T", ylabel="mean escape time")
    legend(ax)
    return ax


def convergence(steps, errors, slope=None, ax=None, label="error"):
    """Log-log error against step size, with the fitted slope in the legend."""
    import matplotlib.pyplot as plt
    ax = ax or plt.gca()
    steps, errors = np.asarray(steps, float), np.asarray(errors, float)
    if slope is None:
        slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    ax.loglog(steps, errors, "o-", label=f"{label} (slope {slope:.2f})")
    ax.set(xlabel="step size", ylabel="error")
    legend(ax)
    return ax
