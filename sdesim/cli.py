"""Command line: ``sdesim demo`` (the main job on built-in defaults) and friends."""

from __future__ import annotations

import argparse
import sys


def _demo(args):
    from sdesim import demo
    summary = demo.run(out=args.out, lr=args.lr, batch_size=args.batch_size,
                       n_particles=args.particles, t_end=args.t_end, backend=args.backend, seed=args.seed)
    print(demo.format_summary(summary))


def _run(args):
    from sdesim import experiment
    summary = experiment.run(args.experiment, out=args.out)
    for label, lens in summary["lenses"].items():
        mean = ", ".join(f"{m:.4f}" for m in lens["final_mean"])
        print(f"{label:45s} final mean ({mean})  loss {lens['final_loss_mean']:.5g}  diverged {lens['diverged']}")


def _gallery(args):
    from sdesim import gallery
    if args.list:
        for name, module in gallery.FIGURES.items():
            print(f"{name:20s} {module.TITLE}")
        return
    done = gallery.generate(args.out, names=args.only, scale=args.scale)
    for name, (path, seconds, caption) in done.items():
        print(f"{name:20s} {seconds:6.1f} s  {path}\n    {caption}", flush=True)


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
    run.add_argument("experiment", help="path to the .toml file")
    run.add_argument("--out", default=None, help="output folder (default: [output] folder of the file)")
    run.set_defaults(func=_run)

    gal = sub.add_parser("gallery", help="regenerate the gallery's textbook figures (PNG + caption each)")
    gal.add_argument("--out", default="docs/gallery", help="output folder (default: docs/gallery)")
    gal.add_argument("--scale", type=float, default=1.0,
                     help="shrink particles, steps and grids by this factor (< 1 for quick checks)")
    gal.add_argument("--only", nargs="+", metavar="NAME", default=None, help="make only these figures")
    gal.add_argument("--list", action="store_true", help="list the figures and exit")
    gal.set_defaults(func=_gallery)

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
