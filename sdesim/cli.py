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
    from sdesim.nets import theory
    quick = ({"steps": 2000, "n_particles": 200, "sim_steps": 500, "gd_steps": 200, "gd_hessian_every": 50}
             if args.quick else {})
    if args.steps is not None:
        quick["steps"] = args.steps
    report = theory.net_vs_theory(args.model, lr=args.lr, lr_h1=args.lr_h1, batch_size=args.batch_size,
                                  directions=args.directions, seed=args.seed, out=args.out, **quick)
    print(theory.format_report(report))


def _extract(args):
    import shlex
    from pathlib import Path

    from sdesim import SGD
    from sdesim.nets import MLP, extract, load, train, zoo
    if args.recipe:
        ext = zoo.build(args.recipe, args.out or "models")
        path = Path(args.out or "models") / args.recipe
    else:
        if not (args.data and args.sizes and args.out):
            raise ConfigError("give --recipe NAME, or --data, --sizes and --out for a custom MLP")
        sizes = [int(s) for s in args.sizes.split(",")]
        train_set, test_set = load(args.data)
        net = MLP(sizes, args.activation, args.loss, args.weight_decay)
        res = train(net, train_set, SGD(lr=args.sgd_lr, batch_size=args.sgd_batch_size), args.steps,
                    record_every=args.steps, stats_every=0, seed=args.seed, init_seed=args.seed)
        recipe = {"data": {"name": args.data}, "net": {"sizes": sizes, "activation": args.activation,
                  "loss": args.loss, "weight_decay": args.weight_decay},
                  "sgd": {"lr": args.sgd_lr, "batch_size": args.sgd_batch_size, "steps": args.steps,
                          "seed": args.seed, "init_seed": args.seed},
                  "extract": {"k": args.k, "gtol": args.gtol, "maxiter": args.maxiter}}
        ext = extract(net, train_set, res.w[-1, 0], test=test_set, **recipe["extract"],
                      provenance={**recipe, "command": shlex.join(["sdesim", *sys.argv[1:]])})
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        ext.save(path)
    rep = ext.report
    print(f"{path}: |grad C(w*)| = {rep['grad_norm']:.3g} ({rep['message']}), test accuracy "
          f"{rep['test_accuracy']:.3f}, top Hessian eigenvalues {[round(v, 4) for v in rep['hessian_eigenvalues'][:5]]}, "
          f"noise captured {rep['noise_fraction']:.2f}")


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
    demo.add_argument("--backend", default="numba", choices=["numba", "numpy"])
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
    nvt.add_argument("--model", default="digits_mlp", help="digits_mlp, mnist1d_mlp or a saved extraction path")
    nvt.add_argument("--lr", type=float, default=None, help="learning rate (default: --lr-h1 / h_1)")
    nvt.add_argument("--lr-h1", type=float, default=0.25, help="lr * h_1 when --lr is not given (default 0.25)")
    nvt.add_argument("--batch-size", type=int, default=128)
    nvt.add_argument("--steps", type=int, default=None, help="real SGD steps (default 20000; 2000 with --quick)")
    nvt.add_argument("--directions", type=int, default=5, help="top Hessian directions in the table")
    nvt.add_argument("--seed", type=int, default=0)
    nvt.add_argument("--out", default="out/net_vs_theory", help="folder for the JSON and the figure")
    nvt.add_argument("--quick", action="store_true", help="short runs (seconds) for a smoke test")
    nvt.set_defaults(func=_net_vs_theory)

    ex = sub.add_parser("extract", help="train an MLP and extract its quadratic model (a shipped recipe "
                                        "or a custom net)")
    ex.add_argument("--recipe", default=None, help="regenerate a shipped model: digits_mlp or mnist1d_mlp")
    ex.add_argument("--out", default=None, help="folder (--recipe; default models) or file stem (custom)")
    ex.add_argument("--data", default=None, help="digits or mnist1d (custom net)")
    ex.add_argument("--sizes", default=None, help="layer widths, e.g. 64,32,10 (custom net)")
    ex.add_argument("--activation", default="tanh", choices=["tanh", "relu", "gelu"])
    ex.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "squared"])
    ex.add_argument("--weight-decay", type=float, default=1e-2)
    ex.add_argument("--sgd-lr", type=float, default=0.05)
    ex.add_argument("--sgd-batch-size", type=int, default=32)
    ex.add_argument("--steps", type=int, default=20_000, help="SGD steps before the L-BFGS refinement")
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
