"""The ``cookbook`` command line.

    cookbook list                      recipes, families, papers, parameters
    cookbook show NAME                 the idea, builders and blocks of a recipe
    cookbook summary NAME [--cost]     model.summary() (and the cost table) of a builder
    cookbook copy NAME DEST [--force]  write the standalone recipe file
    cookbook train NAME [--output M]   train the demo configuration on built-in data
    cookbook render [NAMES]            render the docs pages

Names are matched case-insensitively. Errors print one line and exit non-zero: 2 for
an unknown name or bad usage, 1 for anything else. ``list``, ``show`` and ``copy``
read the recipes' files and never import Keras; the other commands import it only once
the arguments are parsed, so ``--backend`` can still choose the backend.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from cookbook import io, registry, runtime, tasks

EXIT_ERROR, EXIT_USAGE = 1, 2

# What `train --help` lists. The modules that define them import NumPy and Keras, which
# the CLI must not pay for before it needs them; tests/test_cli.py keeps these equal.
BUILTIN_DATASETS = ("cluttered_digits", "synthetic_audio")  # functions of cookbook.data
REAL_DATASETS = ("cifar10", "oxford_iiit_pet", "speech_commands")  # cookbook.data.REAL_DATASETS
TARGETS = ("labels", "denoise", "masks", "superres", "reconstruct", "adversarial")  # cookbook.train.TARGETS


class UsageError(Exception):
    """Bad command-line usage; exits 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(message)


# --- commands --------------------------------------------------------------------------


def cmd_list(args) -> None:
    rows = [("name", "family", "paper", "default build", "params")]
    for recipe in registry.all_recipes():
        rows.append((recipe.name, recipe.family, _shorten(recipe.papers[0], 48), recipe.default_builder,
                     _count(recipe.params())))
    print(_table(rows))


def cmd_show(args) -> None:
    recipe = registry.get(args.name)
    print(f"{recipe.name}: {recipe.title}\n")
    print(f"family: {recipe.family}    task: {recipe.task}")
    for paper in recipe.papers:
        print(f"paper:  {paper}")
    print(f"\n{_idea(recipe.idea)}\n\nbuilders:")
    for name, meta in recipe.builders.items():
        _print_function(name, recipe.signatures[name])
        facts = ["default" if name == recipe.default_builder else "",
                 f"{_count(meta['params'])} parameters" if "params" in meta else "",
                 f"twin of keras.applications.{meta['twin']}" if meta.get("twin") else ""]
        if any(facts):
            print(f"      ({'; '.join(fact for fact in facts if fact)})")
    print("blocks:")
    for name in recipe.blocks:
        _print_function(name, recipe.signatures[name])
    demo = recipe.demo
    print(f"demo:   {demo['builder']}({', '.join(f'{k}={_text(v)}' for k, v in demo['kwargs'].items())})")
    settings = [f"on {tasks.get(recipe.task).dataset}", f"{demo['epochs']} epochs" if "epochs" in demo else "",
                f"batch size {demo['batch_size']}" if "batch_size" in demo else "",
                f"learning rate {_text(demo['learning_rate'])}" if "learning_rate" in demo else ""]
    if any(settings):
        print(f"        {', '.join(setting for setting in settings if setting)}")
    print(f"stages: {recipe.name}.feature_stages(model) names any built model's stage outputs")
    print(f"\ncopy it: cookbook copy {recipe.name} ./models/")


def cmd_summary(args) -> None:
    recipe = registry.get(args.name)
    build = recipe.builder(args.builder)
    kwargs = {}
    if args.input_shape:
        kwargs["input_shape"] = _parse_shape(args.input_shape)
    model = build(**kwargs)
    model.summary()
    if args.cost:
        from cookbook import cost

        print(cost.format_cost(model, by="block"))


def cmd_copy(args) -> None:
    recipe = registry.get(args.name)
    target = copy_recipe(recipe, args.dest, force=args.force)
    print(f"wrote {target} ({recipe.title}); it needs only keras and numpy")


def copy_recipe(recipe: registry.Recipe, dest, force: bool = False) -> Path:
    """Write the recipe's file to ``dest`` and return the path written.

    ``dest`` is a folder when it exists as one, ends with a separator, or does not exist
    and has no ``.py`` suffix (``./models/``, ``models``): the file keeps its name there,
    and a missing folder is created. Otherwise it is the file path. An existing file is
    overwritten only with ``force``.
    """
    text = os.fspath(dest)
    dest = Path(text)
    if dest.is_dir() or text.endswith(("/", os.sep)) or (not dest.exists() and dest.suffix != ".py"):
        dest = dest / recipe.path.name
    if dest.suffix != ".py":
        raise ValueError(f"DEST must be a folder or a .py file path, got {text!r}")
    if dest.is_dir():
        raise IsADirectoryError(f"{dest} is a folder")
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} exists; use --force to overwrite it")
    try:
        io.write_text(dest, recipe.source)
    except OSError as error:
        raise OSError(f"cannot write {dest}: {error.strerror or error}") from None
    return dest


def cmd_train(args) -> None:
    start = time.perf_counter()
    recipe = registry.get(args.name)
    if args.output and Path(args.output).suffix != ".keras":
        raise ValueError(f"--output must be a .keras file path, got {args.output!r}")
    from cookbook import train

    fit_kwargs = {"batch_size": args.batch_size, "learning_rate": args.learning_rate,
                  "jit_compile": False if args.no_jit else None}
    result = train.train_recipe(recipe.name, dataset=args.dataset, epochs=args.epochs, quick=args.quick,
                                **{key: value for key, value in fit_kwargs.items() if value is not None})
    if args.output:
        with io.atomic_path(args.output) as tmp:
            result.model.save(tmp)
        print(f"saved the trained model to {args.output}")
    metrics = "  ".join(f"{key}={_metric(value)}" for key, value in result.metrics.items()
                        if not key.endswith("seconds"))
    print(f"{recipe.name}: {metrics}  wall {time.perf_counter() - start:.1f} s")


def cmd_render(args) -> None:
    from cookbook import render

    names = [registry.get(name).name for name in args.names]  # unknown names fail before any work
    if args.summary_only:
        refreshed = render.refresh_summaries(names or None, docs_dir=args.docs_dir)
        stale = sorted(set(names or registry.names()) - set(refreshed))
        print(f"rewrote the cost tables of {len(refreshed)} recipes"
              + (f"; not rendered or stale, left alone: {', '.join(stale)}" if stale else ""))
        return
    jobs = render.auto_jobs(args.device) if args.jobs is None else args.jobs
    results = render.render(names=names or None, quick=args.quick, device=args.device,
                            docs_dir=args.docs_dir, force=args.force, jobs=jobs)
    for result in results:
        state = "up to date, skipped (--force renders it again)" if result.skipped else "rendered"
        metric = _render_metric(result.metrics)
        print(f"{result.name}: {state}; {metric} in {result.seconds:.0f} s on {result.device}")


def _render_metric(metrics) -> str:
    if "test_accuracy" in metrics:
        pointing = f", pointing game {metrics['pointing_game']:.2f}" if "pointing_game" in metrics else ""
        return f"test accuracy {metrics['test_accuracy']:.3f}{pointing}"
    if "psnr_gain_db" in metrics:
        return f"PSNR gain {metrics['psnr_gain_db']:.1f} dB"
    if "test_mean_iou" in metrics:
        return f"test mean IoU {metrics['test_mean_iou']:.3f}"
    if "elbo_gain_nats" in metrics:
        return f"ELBO {metrics['elbo_gain_nats']:.1f} nats over the pixel-mean model"
    if "confident_share" in metrics:
        return f"{100 * metrics['confident_share']:.0f}% of samples classified with confidence"
    return "no test metric"


# --- helpers ---------------------------------------------------------------------------


def _idea(text: str) -> str:
    """The docstring's idea without its "Paper(s):" paragraph: show prints PAPERS."""
    paragraphs = text.split("\n\n")
    return "\n\n".join(p for p in paragraphs if not p.startswith(("Paper:", "Papers:")))


def _print_function(name: str, signature: registry.Signature) -> None:
    print(f"  {name}{signature.parameters}")
    if signature.summary:
        print(f"      {signature.summary}")


def _count(value) -> str:
    """An integer with thousands separators (25,636,712); '' when unknown."""
    return "" if value is None else f"{value:,}"


def _metric(value) -> str:
    return _count(value) if isinstance(value, int) else f"{value:.4f}"


def _text(value) -> str:
    """A value as a person writes it: 0.005, 0.003922 for 1/255, (64, 64, 1)."""
    if isinstance(value, float):
        short = repr(value)
        return short if len(short) <= 8 else f"{value:.4g}"
    if isinstance(value, (tuple, list)):
        items = ", ".join(_text(item) for item in value) + ("," if len(value) == 1 and isinstance(value, tuple) else "")
        return f"({items})" if isinstance(value, tuple) else f"[{items}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {_text(item)}" for key, item in value.items()) + "}"
    return repr(value)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--input-shape must be comma-separated integers like 64,64,3, got {text!r}") from None
    return shape


def _positive(kind):
    """An argparse type: a ``kind`` (int or float) above zero."""

    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse says "invalid int value: 'x'"
    return parse


def _table(rows) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _train_epilog() -> str:
    return (f"datasets: built-in (no download): {', '.join(BUILTIN_DATASETS)}\n"
            f"          real (tensorflow-datasets): {', '.join(REAL_DATASETS)}\n"
            f"targets:  {', '.join(TARGETS)} (the recipe's task picks one: cookbook.tasks)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cookbook", description="A Keras 3 cookbook of convolutional architectures.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("list", help="list the recipes").set_defaults(run=cmd_list)

    show = commands.add_parser("show", help="the idea, builders and blocks of a recipe")
    show.add_argument("name")
    show.set_defaults(run=cmd_show)

    summary = commands.add_parser("summary", help="print a builder's model summary")
    summary.add_argument("name")
    summary.add_argument("--builder", help="builder to use (default: the recipe's default)")
    summary.add_argument("--input-shape", help="input shape, e.g. 64,64,3 (audio: 16000,1)")
    summary.add_argument("--cost", action="store_true", help="also print parameters and MACs per block")
    summary.set_defaults(run=cmd_summary, keras=True)

    copy = commands.add_parser("copy", help="write the standalone recipe file to DEST")
    copy.add_argument("name")
    copy.add_argument("dest", help="a folder (created if missing; the file keeps its name) or a .py file path")
    copy.add_argument("--force", action="store_true", help="overwrite an existing file")
    copy.set_defaults(run=cmd_copy)

    train = commands.add_parser("train", help="train the demo configuration on built-in data",
                                epilog=_train_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("name")
    train.add_argument("--dataset", help="dataset name (default: the recipe's demo dataset; see below)")
    train.add_argument("--epochs", type=_positive(int), help="epochs (default: the recipe's demo setting)")
    train.add_argument("--batch-size", type=_positive(int), help="batch size (default: the demo's, or 64)")
    train.add_argument("--learning-rate", type=_positive(float), help="peak learning rate (default: the demo's)")
    train.add_argument("--output", metavar="PATH", help="save the trained model to PATH (a .keras file)")
    train.add_argument("--no-jit", action="store_true", help="do not compile the training step with XLA")
    train.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="Keras backend")
    train.add_argument("--quick", action="store_true", help="a very short run, for smoke tests")
    train.set_defaults(run=cmd_train, keras=True)

    render = commands.add_parser("render", help="train the demos and render the docs pages")
    render.add_argument("names", nargs="*", help="recipes to render (default: all)")
    render.add_argument("--quick", action="store_true", help="small, fast renders (CI)")
    render.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="where to train and draw (gpu: fail at once when none is visible)")
    render.add_argument("--force", action="store_true", help="render again even when up to date")
    render.add_argument("--docs-dir", default="docs", help="the docs folder to write under (default: docs)")
    render.add_argument("--jobs", type=_positive(int), metavar="N",
                        help="recipes rendered at a time on the CPU (default: one per core, at most "
                             "4; one on a GPU)")
    render.add_argument("--summary-only", action="store_true",
                        help="rewrite only the cost tables of rendered recipes (no training)")
    render.set_defaults(run=cmd_render, keras=True)
    return parser


def main(argv=None) -> int:
    runtime.quiet_logs("3")
    runtime.prefer_onednn()
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "backend", None):
            if "keras" in sys.modules and sys.modules["keras"].backend.backend() != args.backend:
                raise UsageError("--backend must be chosen before keras is imported")
            os.environ["KERAS_BACKEND"] = args.backend
        if getattr(args, "keras", False):
            runtime.import_keras_quietly()
            runtime.skip_grappler()
        args.run(args)
    except BrokenPipeError:  # e.g. `cookbook show x | head`
        sys.stderr.close()
        return 0
    except (UsageError, registry.UnknownNameError) as error:
        print(f"cookbook: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError, OSError, ImportError, RuntimeError) as error:
        print(f"cookbook: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cookbook: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
