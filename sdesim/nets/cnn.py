r"""A small 1-D convolutional net on MNIST-1D, through the PyTorch adapter: beyond the MLP.

:func:`mnist1d_cnn` builds the module (two stride-2 convolutions with ``tanh``, then a
linear read-out; 1,186 parameters with 8 channels), :func:`build` trains it with SGD
on the first 1000 signals of the offline MNIST-1D training set
(:func:`sdesim.nets.data.load_mnist1d`; fewer samples keep the full-batch L-BFGS
refinement to minutes on two cores) and
extracts its quadratic model with :func:`~sdesim.nets.torch_adapter.extract_quadratic_torch`,
recording in the report how to rebuild the module and data
(:func:`~sdesim.nets.loading.load_objective`), so ``sdesim net-vs-theory --model
mnist1d_cnn`` runs it. The shipped ``models/mnist1d_cnn`` comes from :data:`RECIPE`.
"""

from __future__ import annotations

__all__ = ["RECIPE", "build", "mnist1d_cnn"]

#: The shipped model's recipe: data, module, SGD run (on the float64 objective), extraction.
RECIPE = {
    "data": {"name": "mnist1d", "seed": 42},
    "first": 1000,
    "net": {"factory": "sdesim.nets.cnn:mnist1d_cnn", "loss": "cross_entropy", "weight_decay": 1e-2},
    "sgd": {"lr": 0.1, "batch_size": 32, "steps": 10_000, "seed": 0, "init_seed": 0},
    "extract": {"k": 10, "gtol": 1e-6, "maxiter": 3000},
}


def mnist1d_cnn(channels=8, n_classes=10, length=40, seed=0):
    """``Conv1d(1, c, 5, stride 2) -> tanh -> Conv1d(c, c, 5, stride 2) -> tanh -> Linear(c * length / 4, n_classes)``.

    Inputs ``(n, length)`` (or ``(n, 1, length)``); parameters initialised by
    PyTorch's defaults under ``torch.manual_seed(seed)`` (the global generator's
    state is restored).
    """
    import torch

    class MNIST1DCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv1d(1, channels, 5, stride=2, padding=2)
            self.conv2 = torch.nn.Conv1d(channels, channels, 5, stride=2, padding=2)
            self.fc = torch.nn.Linear(channels * (length // 4), n_classes)

        def forward(self, x):
            if x.ndim == 2:
                x = x[:, None, :]
            h = torch.tanh(self.conv1(x))
            h = torch.tanh(self.conv2(h))
            return self.fc(h.flatten(1))

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MNIST1DCNN()


def build(directory=None, steps=None, progress=None):
    """Train :func:`mnist1d_cnn` by :data:`RECIPE` (``steps`` overrides its SGD steps) and extract it;
    saved to ``directory/mnist1d_cnn`` when ``directory`` is given. Returns the Extraction."""
    from pathlib import Path

    from sdesim.nets.data import Dataset, load
    from sdesim.nets.near_minimum import sgd_steps
    from sdesim.nets.torch_adapter import (
        TorchObjective,
        extract_quadratic_torch,
        torch_loss,
    )

    r = RECIPE
    full, _ = load(**r["data"])
    first = r["first"]
    train_set = Dataset(full.x[:first], full.y[:first], full.n_classes, f"{full.name}[:{first}]")
    module = mnist1d_cnn(seed=r["sgd"]["init_seed"])
    loss_fn = torch_loss(r["net"]["loss"])
    obj = TorchObjective(module, train_set.x, train_set.y, loss_fn, weight_decay=r["net"]["weight_decay"])
    sgd = dict(r["sgd"], steps=int(r["sgd"]["steps"] if steps is None else steps))
    w = sgd_steps(obj, obj.flat(), sgd["lr"], sgd["batch_size"], sgd["steps"], seed=sgd["seed"])
    ext = extract_quadratic_torch(module, train_set.x, train_set.y, loss_fn, w=w,
                                  weight_decay=r["net"]["weight_decay"], progress=progress, **r["extract"],
                                  describe={"net": r["net"], "data": {"name": train_set.name, "load": r["data"],
                                                     "first": first},
                                            "provenance": {"recipe": dict(r, sgd=sgd)}})
    if directory is not None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        ext.save(Path(directory) / "mnist1d_cnn")
    return ext

