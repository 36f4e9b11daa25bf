"""The one list of recipes.

Every module in ``recipes/`` (installed as ``cookbook.recipes``, so that a user's own
``recipes`` package cannot hide it) is a recipe. Its metadata lives in plain
module-level constants (see ``docs/contributing.md``), so a copied file keeps it.

The registry reads that metadata, and the signatures of the builders and blocks,
from the file's syntax tree: listing and describing recipes imports neither the
recipe modules nor Keras. A recipe's module is imported on first use of
:meth:`Recipe.builder` or :meth:`Recipe.block`. Names are matched case-insensitively.
The CLI, the tests, the docs and the render all take their list of recipes from here.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import importlib
from pathlib import Path
from types import ModuleType

from cookbook import recipes as _recipes_package
from cookbook.tasks import TASKS

_REQUIRED = ("FAMILY", "PAPERS", "TASK", "BUILDERS", "DEMO")
# Public functions that take a tensor ``x`` but are not blocks.
_NOT_BLOCKS = ("preprocess_input", "preprocess_input_v2", "feature_stages")
_FOLDER = Path(_recipes_package.__file__).parent


class UnknownNameError(ValueError):
    """A recipe or builder name that is not in the registry."""


@dataclasses.dataclass(frozen=True)
class Signature:
    """A builder's or block's parameters as written, e.g. ``(x, filters, *, name='block')``,
    and the first line of its docstring."""

    parameters: str
    summary: str


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One recipe file and the metadata it declares."""

    name: str
    path: Path
    title: str
    idea: str
    family: str
    papers: tuple
    task: str
    builders: dict
    blocks: tuple  # the public block functions: those whose first parameter is a tensor ``x``
    demo: dict
    default_builder: str
    signatures: dict  # builder or block name -> Signature

    @property
    def module(self) -> ModuleType:
        """The recipe module (imported on first use; it imports Keras)."""
        return importlib.import_module(f"{_recipes_package.__name__}.{self.name}")

    @property
    def source(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def source_hash(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def builder_name(self, name: str | None = None) -> str:
        """The builder's name as the recipe spells it (default: the recipe's default builder)."""
        return _match("builder", name or self.default_builder, self.builders, f" of recipe {self.name!r}")

    def builder(self, name: str | None = None):
        """The builder function called ``name`` (default: the recipe's default builder)."""
        return getattr(self.module, self.builder_name(name))

    def block(self, name: str):
        return getattr(self.module, _match("block", name, self.blocks, f" of recipe {self.name!r}"))

    def twin(self, builder: str) -> str | None:
        """The keras.applications class name this builder reproduces, if any."""
        return self.builders[builder].get("twin")

    def params(self, builder: str | None = None) -> int | None:
        """The parameter count recorded in BUILDERS (the default build records one)."""
        return self.builders[self.builder_name(builder)].get("params")

    def build_demo(self):
        """Build the small configuration the docs and tests train."""
        return self.builder(self.demo["builder"])(**self.demo["kwargs"])

    def feature_stages(self, model) -> list[str]:
        """The names of ``model``'s stage outputs, shallow to deep (the recipe's ``feature_stages``)."""
        return list(self.module.feature_stages(model))


def _unknown(kind: str, name: str, known, where: str = "") -> str:
    close = difflib.get_close_matches(str(name).lower(), list(known), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(known))}"
    return f"unknown {kind} {name!r}{where}{hint}"


def _match(kind: str, name: str, known, where: str = "") -> str:
    """``name`` as spelled in ``known``, ignoring case; UnknownNameError with close matches."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, got {type(name).__name__}")
    folded = {key.lower(): key for key in known}
    if name.lower() not in folded:
        raise UnknownNameError(_unknown(kind, name, known, where))
    return folded[name.lower()]


# --- reading a recipe file ------------------------------------------------------------------


def _literal(node: ast.AST, constants: dict):
    """``ast.literal_eval``, where a name may stand for an earlier constant and a dict may
    hold ``**constant`` (``{"small": _SMALL}``, ``{**_SMALL, "width": 8}``)."""
    if isinstance(node, ast.Name):
        if node.id not in constants:
            raise ValueError(f"{node.id} is not a literal constant")
        return constants[node.id]
    if isinstance(node, ast.Dict):
        found = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                found.update(_literal(value, constants))
            else:
                found[_literal(key, constants)] = _literal(value, constants)
        return found
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(item, constants) for item in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    return ast.literal_eval(node)


def _constants(tree: ast.Module) -> dict:
    """The module's ``NAME = <literal>`` assignments, in order; other assignments are skipped."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = _literal(node.value, found)
            except (ValueError, TypeError, SyntaxError, AttributeError):
                pass
    return found


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0].strip()


def _functions(tree: ast.Module) -> dict:
    """Name -> Signature for every function the module defines at top level."""
    return {node.name: Signature(f"({ast.unparse(node.args)})", _first_line(ast.get_docstring(node)))
            for node in tree.body if isinstance(node, ast.FunctionDef)}


def _blocks(tree: ast.Module, builders) -> tuple:
    """The public functions whose first parameter is a tensor ``x``, in file order."""
    return tuple(node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                 and not node.name.startswith("_") and node.name not in builders
                 and node.name not in _NOT_BLOCKS and node.args.args and node.args.args[0].arg == "x")


def _split_docstring(doc: str) -> tuple[str, str]:
    title, _, rest = doc.partition("\n")
    return title.strip(), rest.strip()


def _read(name: str) -> Recipe:
    path = _FOLDER / f"{name}.py"
    where = f"recipes/{path.name}"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants = _constants(tree)
    missing = [key for key in _REQUIRED if key not in constants]
    if missing:
        raise TypeError(f"{where} lacks the contract constants {missing} (each a literal)")
    signatures = _functions(tree)
    builders = dict(constants["BUILDERS"])
    blocks = _blocks(tree, builders)
    for function in builders:
        if function not in signatures:
            raise TypeError(f"{where} lists builder {function!r} but defines no such function")
    if "feature_stages" not in signatures:
        raise TypeError(f"{where} must define feature_stages(model)")
    if constants["TASK"] not in TASKS:
        raise TypeError(f"{where}: TASK must be one of {tuple(TASKS)}, got {constants['TASK']!r}")
    title, idea = _split_docstring(ast.get_docstring(tree) or "")
    return Recipe(
        name=name,
        path=path,
        title=title,
        idea=idea,
        family=constants["FAMILY"],
        papers=tuple(constants["PAPERS"]),
        task=constants["TASK"],
        builders=builders,
        blocks=blocks,
        demo=dict(constants["DEMO"]),
        default_builder=constants.get("DEFAULT_BUILDER", next(iter(builders))),
        signatures={key: signatures[key] for key in (*builders, *blocks)},
    )


# --- the registry ---------------------------------------------------------------------------


def names() -> list[str]:
    """Names of all recipes, sorted."""
    return sorted(path.stem for path in _FOLDER.glob("*.py") if not path.stem.startswith("_"))


def all_recipes() -> list[Recipe]:
    return [_read(name) for name in names()]


def get(name: str) -> Recipe:
    """The recipe called ``name`` (any case); an unknown name raises UnknownNameError with close matches."""
    return _read(_match("recipe", name, names()))


def all_builders() -> list[tuple[Recipe, str]]:
    """Every (recipe, builder name) pair, for tests parameterized over builders."""
    return [(recipe, builder) for recipe in all_recipes() for builder in recipe.builders]
