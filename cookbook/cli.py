"""The ``cookbook`` command line.

    cookbook list                      recipes, families, papers, parameters
    cookbook show NAME                 the idea, builders and blocks of a recipe
    cookbook summary NAME [--cost]     model.summary() (and the cost table) of a builder
    cookbook copy NAME DEST [--force]  write the standalone recipe file
    cookbook train NAME                train the demo configuration on built-in data
    cookbook render [NAMES]            render the docs pages

Errors print one line and exit non-zero: 2 for an unknown name or bad usage, 1 for
anything else. Keras is imported only when a command needs it, so ``--backend`` can
still choose the backend.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path

from cookbook import io, registry

EXIT_ERROR, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """Bad command-line usage; exits 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(message)


# --- commands --------------------------------------------------------------------------


def cmd_list(args) -> None:
    rows = [("name", "family", "paper", "default build", "params")]
    recipes = registry.all_recipes()
    for i, recipe in enumerate(recipes, start=1):
        _progress(f"counting parameters {i}/{len(recipes)}: {recipe.name}")
        count = _default_param_count(recipe)
        rows.append((recipe.name, recipe.family, _shorten(recipe.papers[0], 48), recipe.default_builder, f"{count:,}"))
    _progress("")
    print(_table(rows))


def cmd_show(args) -> None:
    recipe = registry.get(args.name)
    print(f"{recipe.name}: {recipe.title}\n")
    print(f"family: {recipe.family}    task: {recipe.task}")
    for paper in recipe.papers:
        print(f"paper:  {paper}")
    print(f"\n{recipe.idea}\n\nbuilders:")
    for name, meta in recipe.builders.items():
        twin = f"  (twin of keras.applications.{meta['twin']})" if meta.get("twin") else ""
        print(f"  {name}{_signature(recipe.builder(name))}{twin}")
        print(f"      {_first_line(recipe.builder(name))}")
    print("blocks:")
    for name in recipe.blocks:
        print(f"  {name}{_signature(recipe.block(name))}")
        print(f"      {_first_line(recipe.block(name))}")
    print(f"demo:   {recipe.demo['builder']}(**{recipe.demo['kwargs']}) on {recipe.demo.get('dataset')}")
    print(f"stages: {', '.join(recipe.stages)}")
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
    """Write the recipe's file to ``dest`` (a folder or a file path); never overwrite silently."""
    dest = Path(dest)
    if dest.is_dir() or str(dest).endswith(("/", os.sep)):
        dest = dest / recipe.path.name
    if dest.suffix != ".py":
        raise ValueError(f"DEST must be a folder or a .py file path, got {str(dest)!r}")
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} exists; use --force to overwrite it")
    if dest.exists() and dest.is_dir():
        raise IsADirectoryError(f"{dest} is a folder")
    try:
        io.write_text(dest, recipe.source)
    except OSError as error:
        raise OSError(f"cannot write {dest}: {error.strerror or error}") from None
    return dest


def cmd_train(args) -> None:
    from cookbook import train

    kwargs = {"dataset": args.dataset, "epochs": args.epochs, "quick": args.quick}
    result = train.train_recipe(args.name, **kwargs)
    metrics = "  ".join(f"{key}={value:.4f}" for key, value in result.metrics.items())
    print(f"{args.name}: {metrics}  ({result.seconds:.1f} s)")


def cmd_render(args) -> None:
    from cookbook import render

    for name in args.names:
        registry.get(name)  # unknown names fail before any work starts
    render.render(names=args.names or None, quick=args.quick, device=args.device)


# --- helpers ---------------------------------------------------------------------------


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + message)
        sys.stderr.flush()


def _default_param_count(recipe) -> int:
    """Parameters of the default build, cached by the recipe file's hash."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "keras-cookbook" / "params.json"
    key = f"{recipe.name}:{recipe.default_builder}:{recipe.source_hash}"
    counts = _read_json(cache)
    if key not in counts:
        import keras

        counts[key] = recipe.builder()().count_params()
        keras.backend.clear_session()
        try:
            io.write_json(cache, counts)
        except OSError:
            pass  # a read-only home only costs the cache
    return counts[key]


def _read_json(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--input-shape must be comma-separated integers like 64,64,3, got {text!r}") from None
    return shape


def _signature(function) -> str:
    return str(inspect.signature(function))


def _first_line(function) -> str:
    return (inspect.getdoc(function) or "").split("\n")[0]


def _table(rows) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


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
    summary.set_defaults(run=cmd_summary)

    copy = commands.add_parser("copy", help="write the standalone recipe file to DEST")
    copy.add_argument("name")
    copy.add_argument("dest", help="a folder (the file keeps its name) or a .py file path")
    copy.add_argument("--force", action="store_true", help="overwrite an existing file")
    copy.set_defaults(run=cmd_copy)

    train = commands.add_parser("train", help="train the demo configuration on built-in data")
    train.add_argument("name")
    train.add_argument("--dataset", help="dataset name (default: the recipe's demo dataset)")
    train.add_argument("--epochs", type=int, help="epochs (default: the recipe's demo setting)")
    train.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="Keras backend")
    train.add_argument("--quick", action="store_true", help="a very short run, for smoke tests")
    train.set_defaults(run=cmd_train)

    render = commands.add_parser("render", help="train the demos and render the docs pages")
    render.add_argument("names", nargs="*", help="recipes to render (default: all)")
    render.add_argument("--quick", action="store_true", help="small, fast renders (CI)")
    render.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    render.set_defaults(run=cmd_render)
    return parser


def _import_keras_quietly() -> None:
    """Import keras with the C++ start-up chatter of TensorFlow's CUDA build silenced."""
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def prefer_onednn() -> None:
    """Ask TensorFlow for its oneDNN CPU kernels, unless TF_ENABLE_ONEDNN_OPTS is set.

    TensorFlow turns them on by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on
    an AVX2 CPU they train the demos about 1.3x faster (docs/performance.md). It must run
    before TensorFlow is imported; an explicit TF_ENABLE_ONEDNN_OPTS=0 still wins.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    prefer_onednn()
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "backend", None):
            if "keras" in sys.modules and sys.modules["keras"].backend.backend() != args.backend:
                raise UsageError("--backend must be chosen before keras is imported")
            os.environ["KERAS_BACKEND"] = args.backend
        _import_keras_quietly()
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
