"""Mode connectivity (``sdesim.nets.connectivity``): the Bezier path's barrier is never above the
straight line's, the end points are the trained nets bit for bit, an untrained curve is the line,
the nudged elastic band runs on a network objective, ``sdesim mode-connect`` writes its files, and
bad input raises."""

import json

import numpy as np
import pytest

import sdesim as sd
from sdesim.analysis.paths import interpolate
from sdesim.cli import main
from sdesim.errors import ConfigError, NonFiniteError, SdesimError, ShapeError
from sdesim.nets.connectivity import (
    bezier,
    connect,
    fit_bezier,
    mode_connect,
    path_barrier,
    polyline,
)
from sdesim.nets.objective import MLPObjective


@pytest.fixture(scope="module")
def two_nets():
    """Two 64-16-10 tanh nets trained 600 SGD steps from seeds 0 and 1 on 300 digits."""
    digits, test = sd.nets.load("digits")
    data = sd.nets.Dataset(digits.x[:300], digits.y[:300], 10, "digits300")
    net = sd.nets.MLP((64, 16, 10), "tanh", "cross_entropy", 1e-3)
    ends = [sd.nets.train(net, data, sd.SGD(0.1, 16), 600, record_every=600, stats_every=0, seed=s,
                          init_seed=s).w[-1, 0] for s in (0, 1)]
    return MLPObjective(net, data.x, data.y), MLPObjective(net, test.x, test.y), ends


def test_curve_barrier_is_below_the_line_and_ends_are_the_nets(two_nets):
    obj, test, (a, b) = two_nets
    res = connect(obj, a, b, test, n_points=21, steps=1500, lr=0.1, batch_size=16, seed=0)
    bar = res.barriers()
    assert bar["curve_train"] <= bar["line_train"] and bar["curve_test"] <= bar["line_test"]
    assert bar["line_train"] > 0.1 and bar["curve_train"] < 0.5 * bar["line_train"]    # a real barrier, mostly gone
    for series in (res.line_train, res.curve_train):
        assert series[0] == obj.loss(a) and series[-1] == obj.loss(b)
    assert res.line_test[0] == test.loss(a) and res.curve_test[-1] == test.loss(b)
    assert res.barriers()["line_train"] == path_barrier(res.line_train)
    d = res.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False))["barriers"] == bar


def test_bezier_and_untrained_curve_is_the_line(two_nets):
    obj, _, (a, b) = two_nets
    theta = np.linspace(-1, 1, len(a))
    np.testing.assert_array_equal(bezier(a, theta, b, [0.0, 1.0]), [a, b])
    np.testing.assert_allclose(bezier(a, theta, b, [0.5])[0], 0.25 * a + 0.5 * theta + 0.25 * b, rtol=1e-15)
    res = connect(obj, a, b, n_points=11, steps=0)
    np.testing.assert_array_equal(res.control, [a, 0.5 * (a + b), b])
    assert res.to_dict()["control_distance"] == 0.0
    np.testing.assert_allclose(res.curve_train, res.line_train, rtol=1e-12)
    assert np.all(np.isnan(res.line_test)) and np.isnan(res.barriers()["curve_test"])
    assert json.loads(json.dumps(res.to_dict(), allow_nan=False))["barriers"]["curve_test"] is None
    assert path_barrier([1.0, 3.0, 2.0]) == 1.0 and path_barrier([2.0, 1.0, 0.5]) == 0.0


def test_elastic_band_on_a_net(two_nets):
    """The nudged elastic band of ``sdesim.analysis.paths`` on a network objective (P = 1210): the
    relaxed band's barrier is below the line's, its end images are the nets, and the path is the
    polyline through the images (image i at t = i / 10)."""
    obj, test, (a, b) = two_nets
    res = connect(obj, a, b, test, n_points=21, steps=60, method="neb", n_images=11)
    bar = res.barriers()
    assert bar["curve_train"] <= bar["line_train"] and bar["curve_test"] <= bar["line_test"]
    assert bar["curve_train"] < 0.5 * bar["line_train"]
    np.testing.assert_array_equal(res.control[[0, -1]], [a, b])
    assert res.curve_train[0] == obj.loss(a) and res.curve_train[-1] == obj.loss(b)
    assert res.curve_train[10] == pytest.approx(obj.loss(res.control[5]), rel=1e-12)
    assert res.settings["neb_iterations"] == 60 and res.settings["method"] == "neb"
    np.testing.assert_allclose(polyline(res.control, [0.05]), [0.5 * (res.control[0] + res.control[1])], rtol=1e-12)
    _, values = interpolate(obj, a, b, n=5)
    np.testing.assert_allclose(values[[0, -1]], [obj.loss(a), obj.loss(b)], rtol=1e-12)


def test_bad_input(two_nets):
    obj, test, (a, b) = two_nets
    with pytest.raises(ShapeError, match="end point a"):
        connect(obj, a[:-1], b)
    with pytest.raises(ConfigError, match="coincide"):
        connect(obj, a, a.copy())
    with pytest.raises(NonFiniteError):
        connect(obj, np.full_like(a, np.nan), b)
    with pytest.raises(ConfigError, match="n_points"):
        connect(obj, a, b, n_points=2)
    with pytest.raises(ConfigError, match="test"):
        connect(obj, a, b, test=test.net)
    with pytest.raises(ConfigError, match="objective"):
        connect(obj.net, a, b)
    for kwargs in ({"lr": 0.0}, {"steps": -1}, {"batch_size": 0}, {"batch_size": obj.n_samples + 1}):
        with pytest.raises(SdesimError):
            fit_bezier(obj, a, b, **kwargs)
    with pytest.raises(ShapeError, match="theta0"):
        fit_bezier(obj, a, b, theta0=a[:3])
    with pytest.raises(NonFiniteError, match="diverged"):
        fit_bezier(obj, a, b, steps=200, lr=1e6)
    with pytest.raises(ConfigError, match="method"):
        connect(obj, a, b, method="string")
    with pytest.raises(ConfigError, match="seeds"):
        mode_connect(seeds=(0, 0))


def test_cli_writes_json_and_figure(tmp_path, capsys):
    assert main(["mode-connect", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| line | train |" in out and "| curve | test |" in out
    data = json.loads((tmp_path / "mode_connect.json").read_text())
    assert data["barriers"]["curve_train"] < data["barriers"]["line_train"]
    assert (tmp_path / "mode_connect.png").stat().st_size > 10_000


def test_a_torch_module_gives_the_same_paths(two_nets):
    """``connect`` on the equal PyTorch module (``TorchObjective``, its own parameter layout): the same
    losses along the line and the same trained bend, to rounding."""
    torch = pytest.importorskip("torch")
    from sdesim.nets.torch_adapter import TorchObjective, mlp_to_torch
    obj, test, (a, b) = two_nets
    module, to_torch = mlp_to_torch(obj.net)
    loss_fn = torch.nn.functional.cross_entropy
    t_obj = TorchObjective(module, obj.x, obj.y, loss_fn, obj.net.weight_decay)
    t_test = TorchObjective(module, test.x, test.y, loss_fn, obj.net.weight_decay)
    ref = connect(obj, a, b, test, n_points=11, steps=200, batch_size=16)
    got = connect(t_obj, to_torch(a), to_torch(b), t_test, n_points=11, steps=200, batch_size=16)
    for key in ("line_train", "line_test", "curve_train", "curve_test"):
        np.testing.assert_allclose(getattr(got, key), getattr(ref, key), rtol=1e-10)
    np.testing.assert_allclose(got.control, to_torch(ref.control), rtol=1e-9, atol=1e-12)
