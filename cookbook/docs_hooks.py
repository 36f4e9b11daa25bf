"""The mkdocs hooks (named in ``mkdocs.yml``): navigation, API pages, tables read from manifests.

They only read: the registry for the navigation, the docstrings for the API reference,
and the render's ``manifest.json`` files for every table. Nothing here trains or draws.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

from cookbook import registry
from cookbook.render import pages

log = logging.getLogger("mkdocs.plugins.cookbook")



def _recipes_by_family() -> dict:
    families = {}
    for recipe in registry.all_recipes():
        families.setdefault(recipe.family, []).append(recipe)
    return dict(sorted(families.items()))


def on_config(config):
    """mkdocs hook: replace the ``Recipes`` nav entry by one section per family, from the registry."""
    docs_dir = Path(config["docs_dir"])
    families = _recipes_by_family()
    for recipes in families.values():
        for recipe in recipes:
            if not (docs_dir / "recipes" / f"{recipe.name}.md").is_file():
                log.warning(f"recipe {recipe.name!r} has no page docs/recipes/{recipe.name}.md")
    section = ["recipes/index.md"] + [
        {family: [f"recipes/{recipe.name}.md" for recipe in recipes]} for family, recipes in families.items()
    ]
    nav = config.get("nav") or []
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and "Recipes" in entry:
            nav[i] = {"Recipes": section}
            break
    else:
        nav.append({"Recipes": section})
    config["nav"] = nav
    return config


def on_files(files, config):
    """mkdocs hook: leave out pages of recipes that are not in the registry (drafts), with a note."""
    known = set(registry.names())
    for file in list(files):
        path = Path(file.src_uri)
        is_recipe_page = path.parent.as_posix() == "recipes" and path.suffix == ".md" and path.stem != "index"
        if is_recipe_page and path.stem not in known:
            log.info(f"leaving out {file.src_uri}: no recipe called {path.stem!r}")
            files.remove(file)
    return files


def on_page_markdown(markdown, page, config, files):
    """mkdocs hook: fill ``<!-- recipe-table -->`` (recipes by family), ``<!-- comparison-table -->``,
    ``<!-- render-times -->`` and ``<!-- api: cookbook.MODULE -->`` (the module's reference)."""
    import re

    docs_dir = Path(config["docs_dir"])
    markdown = re.sub(r"<!-- api: ([\w.]+) -->", lambda match: api_markdown(match.group(1)), markdown)
    tables = {"<!-- render-times -->": render_times_table, "<!-- recipe-table -->": recipe_table,
              "<!-- comparison-table -->": comparison_table}
    for marker, table in tables.items():
        if marker in markdown:
            markdown = markdown.replace(marker, table(docs_dir))
    return markdown


def _manifest(docs_dir, name):
    from cookbook.render import ASSETS, read_manifest

    return read_manifest(Path(docs_dir) / ASSETS / name) or {}


def _test_metric(metrics) -> str:
    if "test_accuracy" in metrics:
        return f"{metrics['test_accuracy']:.3f} accuracy"
    if "psnr_gain_db" in metrics:
        return f"+{metrics['psnr_gain_db']:.1f} dB PSNR"
    if "test_mean_iou" in metrics:
        return f"{metrics['test_mean_iou']:.3f} mean IoU"
    if "elbo_gain_nats" in metrics:
        return f"ELBO +{metrics['elbo_gain_nats']:.1f} nats"
    if "confident_share" in metrics:
        return f"{100 * metrics['confident_share']:.0f}% confident samples"
    return "not rendered"


def recipe_table(docs_dir="docs") -> str:
    """The recipes by family, with the demo build's parameters, MACs and test metric (from the manifests)."""
    lines = []
    for family, recipes in _recipes_by_family().items():
        lines += [f"### {family}", "", "| recipe | what it is | builders | demo params | demo MACs | demo test |",
                  "| --- | --- | --- | ---: | ---: | --- |"]
        for recipe in recipes:
            builders = ", ".join(f"`{name}`" for name in recipe.builders)
            m = _manifest(docs_dir, recipe.name).get("metrics", {})
            params = f"{m['params']:,}" if "params" in m else ""
            macs = f"{m['macs'] / 1e6:.1f} M" if "macs" in m else ""
            lines.append(f"| [{recipe.name}]({recipe.name}.md) | {recipe.title} | {builders} | {params} | {macs} "
                         f"| {_test_metric(m)} |")
        lines.append("")
    return "\n".join(lines)


def _short_device(device: str) -> str:
    """'CPU: Intel(R) Xeon(R) Processor @ 2.80GHz, 2 cores' -> 'Intel' (the table's note names it in full)."""
    return device.removeprefix("CPU: ").removeprefix("GPU: ").split()[0].replace("(R)", "")


def comparison_table(docs_dir="docs") -> str:
    """Every classifier demo on the same task: params, MACs, train time, accuracy, pointing game."""
    from cookbook.render import classifier_rows

    rows = sorted(classifier_rows(docs_dir), key=lambda row: -row["test_accuracy"])
    devices = sorted({row["device"] for row in rows})
    mixed = len(devices) > 1  # then each train time names its machine: times compare within one
    # The machine goes in the train-time cell: a column of its own made the table scroll sideways.
    lines = ["| recipe | parameters | multiply-adds | train time | test accuracy | pointing game (chance) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        machine = f" ({_short_device(row['device'])})" if mixed else ""
        lines.append(f"| [{row['name']}](recipes/{row['name']}.md) | {row['params']:,} | {row['macs'] / 1e6:.1f} M "
                     f"| {row['train_seconds']:.0f} s{machine} | {row['test_accuracy']:.3f} | {row['pointing_game']:.2f} "
                     f"({row['pointing_game_random']:.2f}) |")
    if mixed:
        return "\n".join(lines) + (f"\n\nThe renders ran on different machines or beside different numbers of other "
                                   f"renders ({'; '.join(devices)}): "
                                   "compare train times within one.\n")
    return "\n".join(lines) + f"\n\nTrain times measured on {devices[0] if devices else 'no device yet'}.\n"


_SECTIONS = ("Args", "Arguments", "Returns", "Raises", "Yields", "Example", "Examples", "Attributes")


def _docstring_markdown(doc: str) -> str:
    """A Google-style docstring as Markdown: prose, then Args as a list, Returns/Raises as text."""
    import re
    import textwrap

    doc = re.sub(r":(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]+)`", r"`\1`", doc).replace("``", "`")
    out, section, block = [], None, []

    def flush():
        if section is None:
            return
        body = textwrap.dedent("\n".join(block)).strip("\n")
        if section in ("Example", "Examples"):
            out.append(f"**{section}**\n\n```python\n{body}\n```\n")
        elif section in ("Args", "Arguments", "Attributes"):
            items = []
            for line in body.splitlines():
                if line and not line[0].isspace() and ":" in line:
                    name, _, rest = line.partition(":")
                    items.append(f"- `{name.strip()}`: {rest.strip()}")
                elif items:
                    items[-1] += " " + line.strip()
            out.append(f"**{section}**\n\n" + "\n".join(items) + "\n")
        else:
            out.append(f"**{section}:** " + " ".join(line.strip() for line in body.splitlines()) + "\n")

    prose = []
    for line in doc.splitlines():
        header = line.strip().rstrip(":")
        if line.strip().endswith(":") and header in _SECTIONS and not line.startswith(" "):
            flush()
            section, block = header, []
        elif section is None:
            prose.append(line)
        else:
            block.append(line)
    flush()
    return "\n".join(prose).strip() + "\n\n" + "\n".join(out)


def api_markdown(module_name: str) -> str:
    """The reference of a module's public names (``__all__``), generated from their docstrings."""
    import importlib

    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or sorted(n for n in vars(module) if not n.startswith("_"))
    parts = []
    for name in names:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            kind = "class" if inspect.isclass(obj) else "def"
            try:
                parameters = []
                for p in inspect.signature(obj).parameters.values():
                    star = p.kind == p.KEYWORD_ONLY and not any(q.startswith("*") for q in parameters)
                    parameters += ["*"] * star + [str(p)]
            except (TypeError, ValueError):
                parameters = ["..."]
            signature = f"({', '.join(parameters)})"
            if len(name) + len(signature) > 90:
                signature = "(\n" + "".join(f"    {p},\n" for p in parameters) + ")"
            parts.append(f"### `{name}`\n\n```python\n{kind} {name}{signature}\n```\n\n"
                         f"{_docstring_markdown(inspect.getdoc(obj) or '(no docstring)')}")
        else:
            parts.append(f"### `{name}`\n\n```python\n{name} = {obj!r}\n```\n")
    return "\n".join(parts)


def render_times_table(docs_dir="docs") -> str:
    """A Markdown table of the time each recipe's committed render took, from the manifests.
    Device and backend get columns only when the renders differ in them; else one line below."""
    manifests = [(recipe, _manifest(docs_dir, recipe.name)) for recipe in registry.all_recipes()]
    places = {(pages.where(m), m.get("backend", "")) for _, m in manifests if m}
    shared = len(places) == 1
    rows = ["| recipe | render time | of which training | test metric |" + ("" if shared else " device | backend |"),
            "| --- | ---: | ---: | --- |" + ("" if shared else " --- | --- |")]
    blank = " | |" if not shared else ""
    total, count = 0.0, 0
    for recipe, manifest in manifests:
        if not manifest:
            rows.append(f"| [{recipe.name}](recipes/{recipe.name}.md) | not rendered | | |{blank}")
            continue
        metrics = manifest.get("metrics", {})
        quick = " (quick)" if manifest.get("key", {}).get("quick") else ""
        train = f"{metrics['train_seconds']:.0f} s" if "train_seconds" in metrics else ""
        place = "" if shared else f" {pages.where(manifest)} | {manifest.get('backend', '')} |"
        rows.append(f"| [{recipe.name}](recipes/{recipe.name}.md) | {manifest.get('seconds', 0):.0f} s{quick} | "
                    f"{train} | {_test_metric(metrics)} |{place}")
        total += float(manifest.get("seconds", 0.0))
        count += 1
    rows.append(f"| **all {count}** | **{total / 60:.1f} min** | | |{blank}")
    if shared:
        device, backend = places.pop()
        rows.append(f"\nEvery render ran on {device}, Keras backend `{backend}`.")
    return "\n".join(rows) + "\n"
