"""Real SGD near the shipped digits minimum against the extracted model's Lyapunov predictions
(``sdesim.nets.theory``, docs/theory.md#real-networks), the validity warnings, and the
``sdesim net-vs-theory`` CLI.

The edge-of-stability check (GD sharpness settling at 2/lr on a real net) lives in
``tests/test_nets.py::test_gd_sharpness_settles_at_two_over_lr``; here only its
use in the report is exercised (``--quick``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the digits data ship with scikit-learn

import sdesim as sd
from sdesim.nets import train
from sdesim.nets.theory import (
    format_report,
    load_extraction,
    net_vs_theory,
    real_sgd_near_minimum,
)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def test_digits_low_noise_variances_match_discrete_lyapunov():
    """Issue 5's validation: shipped digits model, B = 128, lr h_1 = 0.25, top 5 directions.

    Real SGD, 16,000 steps from w* (first 20% discarded), 20 batch means: the
    standard error of each measured/predicted ratio is 2.5-4% (asserted < 5%), so the
    issue's 15% band is >= 3 sigma about 1 (measured 1.00-1.07 at 20,000 steps).
    The simulated extracted model (400 particles x 1000 steps, s.e. ~0.6%) must
    match the discrete prediction within 4 s.e. + 1% (exact theory for the linear
    model up to the burn-in). The SDE under-predicts: mean real/SDE over the five
    directions > 1.05 (theory 2/(2 - lr h) = 1.08-1.14; s.e. of the mean ~1.5%).
    """
    rep = net_vs_theory("digits_mlp", lr_h1=0.25, batch_size=128, steps=16_000, n_particles=400,
                        sim_steps=1000, gd_steps=0, seed=0)
    assert rep.warnings == ()
    assert len(rep.rows) == 5
    for r in rep.rows:
        q = r.ratios()
        assert q["real_over_discrete_se"] < 0.05, r
        assert abs(q["real_over_discrete"] - 1) < 0.15, (r.j, q["real_over_discrete"])
        assert abs(q["simulated_over_discrete"] - 1) < 4 * q["simulated_over_discrete_se"] + 0.01, (r.j, q)
    assert np.mean([r.ratios()["real_over_sde"] for r in rep.rows]) > 1.05
    assert rep.rows[0].lr_h == pytest.approx(0.25)
    assert abs(rep.quadratic.ratio - 1) < 0.2


def test_real_loop_matches_train_bit_for_bit():
    """The lean SGD loop draws the same minibatches as ``nets.train`` and records the same coordinates."""
    ext, net, data = load_extraction("digits_mlp")
    lr = 0.25 / ext.model.hessian_eigenvalues[0]
    u, snaps, div = real_sgd_near_minimum(net, data, ext, lr, 32, 30, seed=3, snapshots=[30])
    res = train(net, data, sd.SGD(lr=lr, batch_size=32), 30, w0=ext.w_star, record_every=1,
                        stats_every=0, directions=ext.basis, w_ref=ext.w_star, seed=3)
    assert div == -1
    np.testing.assert_array_equal(u, res.w[:, 0])
    np.testing.assert_array_equal(ext.project(snaps[30]), res.w[-1, 0])


def test_validity_warnings(tmp_path):
    """Relaxation slower than the run, state-dependent noise at lr h_1 = 1.5 (real/discrete
    1.3-2.1 there), and lr h_1 >= 2 (no stationary state): each warns; the discrete prediction
    and the simulation are skipped in the unstable case."""
    with pytest.warns(UserWarning, match="state-dependent noise"):
        rep = net_vs_theory("digits_mlp", lr_h1=1.5, steps=3000, batches=10, directions=4, n_particles=0,
                            n_snapshots=10, gd_steps=0)
    assert max(rep.quadratic.noise) > 1.5
    with pytest.warns(UserWarning, match="exceeds the run"):
        rep = net_vs_theory("digits_mlp", lr=0.01, steps=100, batches=4, n_particles=0, n_snapshots=2,
                            gd_steps=0)
    assert any("exceeds the run" in w for w in rep.warnings)
    with pytest.warns(UserWarning, match="linearly unstable"):
        rep = net_vs_theory("digits_mlp", lr_h1=2.05, steps=40, batches=4, directions=2, n_particles=50,
                            sim_steps=20, n_snapshots=0, gd_steps=0, out=tmp_path, figure=False)
    assert np.isnan(rep.rows[0].discrete) and np.isnan(rep.rows[0].simulated)
    strict = json.loads(rep.json_path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert strict["rows"][0]["discrete"] is None and strict["warnings"] == list(rep.warnings)
    assert np.isfinite(rep.rows[0].sde)
    assert "warning: lr * h_1" in format_report(rep)


def test_cli_quick(tmp_path, capsys):
    from sdesim.cli import main

    assert main(["net-vs-theory", "--quick", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "real/disc" in text and "2/lr" in text
    data = json.loads((tmp_path / "net_vs_theory.json").read_text())
    assert data["format"] == "sdesim.NetTheoryReport" and len(data["rows"]) == 5
    assert data["gd"]["threshold"] == pytest.approx(2 / data["gd"]["lr"])
    assert (tmp_path / "net_vs_theory.png").stat().st_size > 10_000


@pytest.mark.filterwarnings("ignore:L-BFGS stopped")
def test_cli_extract_custom_then_compare(tmp_path, capsys):
    """A tiny custom MLP: train, extract, save; then the comparison runs on the saved file."""
    from sdesim.cli import main

    path = tmp_path / "tiny"
    assert main(["extract", "--data", "digits", "--sizes", "64,8,10", "--k", "4", "--steps", "300",
                 "--maxiter", "200", "--out", str(path)]) == 0
    assert "tiny" in capsys.readouterr().out
    ext, net, data = load_extraction(path)
    assert ext.model.dim == 4 and net.sizes == (64, 8, 10) and len(data) == 1438
    rep = net_vs_theory(path, steps=400, batches=4, directions=2, n_particles=50, sim_steps=100,
                        n_snapshots=2, gd_steps=0)
    assert len(rep.rows) == 2 and np.all(np.isfinite([r.real for r in rep.rows]))
    assert main(["extract", "--recipe", "nope"]) == 2
    assert main(["extract", "--data", "digits"]) == 2   # --sizes missing
