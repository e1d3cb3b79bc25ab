"""Command line: ``sdesim demo`` (the main job on built-in defaults) and friends."""

from __future__ import annotations

import argparse
import sys

from sdesim.errors import ConfigError


def _demo(args):
    from sdesim import demo
    summary = demo.run(out=args.out, lr=args.lr, batch_size=args.batch_size,
                       n_particles=args.particles, t_end=args.t_end, backend=args.backend, seed=args.seed)
    print(demo.format_summary(summary))


def _run(args):
    from sdesim import experiment
    print(experiment.format_summary(experiment.run(args.experiment, out=args.out, scheduler=args.scheduler,
                                                   resume=args.resume)))


def _schema(args):
    from pathlib import Path

    from sdesim import experiment
    page = experiment.schema_markdown()
    if args.out is None:
        print(page, end="")
        return
    Path(args.out).write_text(page)
    print(f"wrote {args.out}")


def _gallery(args):
    from sdesim import gallery
    if args.list:
        for name, module in gallery.FIGURES.items():
            print(f"{name:20s} {module.TITLE}")
        return
    done = gallery.generate(args.out, names=args.only, scale=args.scale)
    for name, (path, seconds, caption) in done.items():
        print(f"{name:20s} {seconds:6.1f} s  {path}\n    {caption}", flush=True)


def _net_vs_theory(args):
    if args.trajectories:
        from sdesim.nets import trajectories
        given = [flag for flag, value in (("--lr", args.lr), ("--lr-h1", args.lr_h1), ("--steps", args.steps),
                                           ("--batch-size", args.batch_size), ("--directions", args.directions))
                 if value is not None]
        if given:
            raise ConfigError(f"--trajectories sets its own learning rates, batches and steps: drop {', '.join(given)}")
        trajectories.run(args.out, quick=args.quick, model=args.model, seed=args.seed)
        return
    from sdesim.nets import theory
    from sdesim.nets.loading import is_mlp_extraction
    quick = ({"steps": 2000, "n_particles": 200, "sim_steps": 500, "gd_steps": 200, "gd_hessian_every": 50}
             if args.quick else {})
    if quick and not is_mlp_extraction(args.model):
        del quick["gd_steps"]  # GD from initialisation: the package's MLP only
    if args.steps is not None:
        quick["steps"] = args.steps
    given = {"lr_h1": args.lr_h1, "batch_size": args.batch_size, "directions": args.directions}
    report = theory.net_vs_theory(args.model, lr=args.lr, seed=args.seed, out=args.out, **quick,
                                  **{k: v for k, v in given.items() if v is not None})
    print(theory.format_report(report))


def _mode_connect(args):
    from sdesim.nets import connectivity
    res = connectivity.mode_connect(data=args.data, seeds=(args.seed, args.seed + 1), method=args.method,
                                    quick=args.quick, out=args.out)
    print(connectivity.format_table(res))
    print(f"wrote {args.out}/mode_connect.json and {args.out}/mode_connect.png")


def _extract(args):
    import shlex
    from pathlib import Path

    from sdesim import SGD
    from sdesim.nets import MLP, Dataset, extract, load, train, zoo
    from sdesim.nets.extract import refinement_summary
    from sdesim.nets.loading import data_spec, load_data_file
    command = shlex.join(["sdesim", *sys.argv[1:]])
    if args.recipe == "mnist1d_cnn":
        from sdesim.nets import cnn
        ext = cnn.build(args.out or "models")
        path = Path(args.out or "models") / args.recipe
    elif args.recipe:
        ext = zoo.build(args.recipe, args.out or "models")
        path = Path(args.out or "models") / args.recipe
    elif args.module:
        if not (args.data and args.out):
            raise ConfigError("--module needs --data (digits, mnist1d or a .npz file with x and y) and --out")
        path = _extract_torch(args, command)
        ext = None
    else:
        if not (args.data and args.sizes and args.out):
            raise ConfigError("give --recipe NAME, --module PACKAGE.MODULE:FACTORY with --data and --out, "
                              "or --data, --sizes and --out for a custom MLP")
        if args.loss == "mse":
            raise ConfigError("--loss mse is for a PyTorch --module; the MLP's squared loss is --loss squared")
        sizes = [int(s) for s in args.sizes.split(",")]
        spec = data_spec(args.data)
        if "file" in spec:
            train_set, test_set = Dataset(*load_data_file(spec["file"]), sizes[-1], Path(args.data).stem), None
        else:
            train_set, test_set = load(args.data)
        net = MLP(sizes, args.activation, args.loss, args.weight_decay)
        res = train(net, train_set, SGD(lr=args.sgd_lr, batch_size=args.sgd_batch_size), args.steps,
                    record_every=args.steps, stats_every=0, seed=args.seed, init_seed=args.seed)
        recipe = {"data": spec, "net": {"sizes": sizes, "activation": args.activation,
                  "loss": args.loss, "weight_decay": args.weight_decay},
                  "sgd": {"lr": args.sgd_lr, "batch_size": args.sgd_batch_size, "steps": args.steps,
                          "seed": args.seed, "init_seed": args.seed},
                  "extract": {"k": args.k, "gtol": args.gtol, "maxiter": args.maxiter}}
        ext = extract(net, train_set, res.w[-1, 0], test=test_set, **recipe["extract"], refine=not args.no_refine,
                      provenance={**recipe, "command": command})
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        ext.save(path)
    if ext is None:
        from sdesim.nets.extract import Extraction
        ext = Extraction.load(path)
    rep = ext.report
    acc = "" if rep.get("test_accuracy") is None else f"test accuracy {rep['test_accuracy']:.3f}, "
    print(f"{path}: |grad C(w*)| = {rep['grad_norm']:.3g}, {acc}top Hessian eigenvalues "
          f"{[round(v, 4) for v in rep['hessian_eigenvalues'][:5]]}, noise captured "
          + ("n/a" if rep.get("noise_fraction") is None else f"{rep['noise_fraction']:.2f}"))
    print(f"  {refinement_summary(rep)}")


def _extract_torch(args, command):
    """``sdesim extract --module``: SGD on the module's weights, then the extraction; returns the saved path."""
    from pathlib import Path

    from sdesim.nets import load
    from sdesim.nets.loading import data_spec, load_data_file
    from sdesim.nets.near_minimum import sgd_steps
    from sdesim.nets.torch_adapter import (
        TorchObjective,
        extract_quadratic_torch,
        module_from_factory,
        torch_loss,
    )
    if args.loss == "squared":
        raise ConfigError("--loss squared is the MLP's; a PyTorch --module takes cross_entropy or mse")
    spec = data_spec(args.data)
    if "file" in spec:
        (x, y), data = load_data_file(spec["file"]), {"name": Path(args.data).stem, "file": spec["file"]}
    else:
        train_set = load(args.data)[0]
        (x, y), data = (train_set.x, train_set.y), {"name": train_set.name, "load": spec}
    module, loss_fn = module_from_factory(args.module), torch_loss(args.loss)
    obj = TorchObjective(module, x, y, loss_fn, weight_decay=args.weight_decay)
    w = sgd_steps(obj, obj.flat(), args.sgd_lr, args.sgd_batch_size, args.steps, seed=args.seed)
    net = {"factory": args.module, "loss": args.loss, "weight_decay": args.weight_decay}
    sgd = {"lr": args.sgd_lr, "batch_size": args.sgd_batch_size, "steps": args.steps, "seed": args.seed}
    ext = extract_quadratic_torch(module, x, y, loss_fn, k=args.k, w=w, refine=not args.no_refine,
                                  weight_decay=args.weight_decay, gtol=args.gtol, maxiter=args.maxiter,
                                  describe={"net": net, "data": data,
                                            "provenance": {"sgd": sgd, "command": command}})
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext.save(path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sdesim", description="Stochastic dynamics of SGD on loss landscapes.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="GD, SGD, gradient flow, modified flow and the SGD diffusion "
                                       "on one landscape; writes a figure")
    demo.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    demo.add_argument("--lr", type=float, default=0.1)
    demo.add_argument("--batch-size", type=int, default=1)
    demo.add_argument("--particles", type=int, default=4000)
    demo.add_argument("--t-end", type=float, default=6.0)
    demo.add_argument("--backend", default="numba",
                      help="numba (default), numpy, or cupy (a CUDA GPU: the ensemble lenses run there, "
                           "the one-particle flows on numba)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    run = sub.add_parser("run", help="run an experiment file (TOML): loss, dynamics, settings, plots")
    run.add_argument("experiment", help="path to the .toml file (or an experiment.resolved.json, to repeat a run)")
    run.add_argument("--out", default=None, help="output folder (default: [output] folder of the file)")
    run.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="a sweep: run its points on the Dask scheduler at this address")
    run.add_argument("--resume", action="store_true",
                     help="a sweep: complete its store, computing only the missing points")
    run.set_defaults(func=_run)

    schema = sub.add_parser("schema", help="the reference of experiment files (every section, key, type, "
                                           "default and allowed value) as Markdown")
    schema.add_argument("--out", default=None, help="write it to this file (docs/experiments.md) "
                                                    "instead of printing it")
    schema.set_defaults(func=_schema)

    gal = sub.add_parser("gallery", help="regenerate the gallery's textbook figures (PNG + caption each)")
    gal.add_argument("--out", default="docs/gallery", help="output folder (default: docs/gallery)")
    gal.add_argument("--scale", type=float, default=1.0,
                     help="shrink particles, steps and grids by this factor (< 1 for quick checks)")
    gal.add_argument("--only", nargs="+", metavar="NAME", default=None, help="make only these figures")
    gal.add_argument("--list", action="store_true", help="list the figures and exit")
    gal.set_defaults(func=_gallery)

    nvt = sub.add_parser("net-vs-theory", help="real SGD near a net's minimum against the discrete-Lyapunov and "
                                               "SDE predictions of its extracted model; GD sharpness vs 2/lr")
    nvt.add_argument("--model", default="digits_mlp", help="digits_mlp, mnist1d_mlp, mnist1d_cnn (PyTorch) or a "
                                                           "saved extraction path (sdesim extract)")
    nvt.add_argument("--lr", type=float, default=None, help="learning rate (default: --lr-h1 / h_1)")
    nvt.add_argument("--lr-h1", type=float, default=None, help="lr * h_1 when --lr is not given (default 0.25)")
    nvt.add_argument("--batch-size", type=int, default=None, help="minibatch size (default 128)")
    nvt.add_argument("--steps", type=int, default=None, help="real SGD steps (default 20000; 2000 with --quick)")
    nvt.add_argument("--directions", type=int, default=None, help="top Hessian directions in the table (default 5)")
    nvt.add_argument("--seed", type=int, default=0)
    nvt.add_argument("--out", default="out/net_vs_theory", help="folder for the JSON and the figure")
    nvt.add_argument("--quick", action="store_true", help="short runs (seconds) for a smoke test")
    nvt.add_argument("--trajectories", action="store_true",
                     help="instead: GD/SGD on a small net against gradient and modified flows (slopes), and "
                          "transients of real SGD against the model; writes trajectories.json")
    nvt.set_defaults(func=_net_vs_theory)

    mc = sub.add_parser("mode-connect", help="two MLPs trained from different seeds: loss along the line "
                                             "between them and along a trained Bezier curve (barriers)")
    mc.add_argument("--data", default="digits", choices=["digits", "mnist1d"])
    mc.add_argument("--seed", type=int, default=0, help="the nets' seeds are SEED and SEED + 1")
    mc.add_argument("--method", default="bezier", choices=["bezier", "neb"],
                    help="the low-loss path: trained Bezier curve (default) or nudged elastic band")
    mc.add_argument("--out", default="out/mode_connect", help="folder for the JSON and the figure")
    mc.add_argument("--quick", action="store_true", help="2000 training steps, short curve fit (seconds)")
    mc.set_defaults(func=_mode_connect)

    ex = sub.add_parser("extract", help="train a net and extract its quadratic model (a shipped recipe, "
                                        "a custom MLP or a PyTorch module)")
    ex.add_argument("--recipe", default=None, help="regenerate a shipped model: digits_mlp, mnist1d_mlp or "
                                                   "mnist1d_cnn (PyTorch)")
    ex.add_argument("--out", default=None, help="folder (--recipe; default models) or file stem (custom)")
    ex.add_argument("--data", default=None, help="digits, mnist1d or a .npz file with arrays x and y (custom net)")
    ex.add_argument("--module", default=None, metavar="PACKAGE.MODULE:FACTORY",
                    help="a PyTorch module: FACTORY() returns it (its weights are where SGD starts)")
    ex.add_argument("--sizes", default=None, help="layer widths, e.g. 64,32,10 (custom net)")
    ex.add_argument("--activation", default="tanh", choices=["tanh", "relu", "gelu"])
    ex.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "squared", "mse"],
                    help="squared: the MLP's 1/2 |f(x) - onehot(y)|^2; mse: a module's mean((f(x) - y)^2)")
    ex.add_argument("--weight-decay", type=float, default=1e-2)
    ex.add_argument("--sgd-lr", type=float, default=0.05)
    ex.add_argument("--sgd-batch-size", type=int, default=32)
    ex.add_argument("--steps", type=int, default=20_000, help="SGD steps before the L-BFGS refinement "
                                                               "(0: extract at the module's own weights)")
    ex.add_argument("--no-refine", action="store_true",
                    help="no L-BFGS refinement: extract at the weights SGD reached (it may move them far)")
    ex.add_argument("--k", type=int, default=20, help="Hessian (and noise) eigenpairs kept")
    ex.add_argument("--gtol", type=float, default=1e-6)
    ex.add_argument("--maxiter", type=int, default=3000)
    ex.add_argument("--seed", type=int, default=0)
    ex.set_defaults(func=_extract)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except Exception as exc:  # a clear one-line error for the terminal, not a traceback
        from sdesim.errors import SdesimError
        if isinstance(exc, (SdesimError, ValueError, TypeError)):
            print(f"sdesim {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
