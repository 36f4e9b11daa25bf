"""The one list of recipes.

Every module in ``recipes/`` is a recipe. Its metadata lives in plain module-level
constants (see ``docs/contributing.md``), so a copied file keeps it. The CLI, the
tests, the docs and the render all take their list of recipes from here.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import recipes as _recipes_package

TASKS = ("classification", "audio", "autoencoder")
_REQUIRED = ("FAMILY", "PAPERS", "TASK", "BUILDERS", "BLOCKS", "DEMO", "STAGES")


class UnknownNameError(ValueError):
    """A recipe or builder name that is not in the registry."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One recipe module and the metadata it declares."""

    name: str
    module: ModuleType
    title: str
    idea: str
    family: str
    papers: tuple
    task: str
    builders: dict
    blocks: dict
    demo: dict
    stages: tuple
    default_builder: str

    @property
    def path(self) -> Path:
        return Path(self.module.__file__)

    @property
    def source(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def source_hash(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def builder(self, name: str | None = None):
        """The builder function called ``name`` (default: the recipe's default builder)."""
        name = name or self.default_builder
        if name not in self.builders:
            raise UnknownNameError(_unknown("builder", name, self.builders, f" of recipe {self.name!r}"))
        return getattr(self.module, name)

    def block(self, name: str):
        if name not in self.blocks:
            raise UnknownNameError(_unknown("block", name, self.blocks, f" of recipe {self.name!r}"))
        return getattr(self.module, name)

    def twin(self, builder: str) -> str | None:
        """The keras.applications class name this builder reproduces, if any."""
        return self.builders[builder].get("twin")

    def build_demo(self):
        """Build the small configuration the docs and tests train."""
        return self.builder(self.demo["builder"])(**self.demo["kwargs"])


def _unknown(kind: str, name: str, known, where: str = "") -> str:
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(known))}"
    return f"unknown {kind} {name!r}{where}{hint}"


def _split_docstring(module: ModuleType) -> tuple[str, str]:
    doc = inspect.getdoc(module) or ""
    title, _, rest = doc.partition("\n")
    return title.strip(), rest.strip()


def _load(module_name: str) -> Recipe:
    module = importlib.import_module(f"recipes.{module_name}")
    missing = [key for key in _REQUIRED if not hasattr(module, key)]
    if missing:
        raise TypeError(f"recipes/{module_name}.py lacks the contract constants {missing}")
    title, idea = _split_docstring(module)
    builders = dict(module.BUILDERS)
    for builder in builders:
        if not callable(getattr(module, builder, None)):
            raise TypeError(f"recipes/{module_name}.py lists builder {builder!r} but defines no such function")
    for block in module.BLOCKS:
        if not callable(getattr(module, block, None)):
            raise TypeError(f"recipes/{module_name}.py lists block {block!r} but defines no such function")
    if module.TASK not in TASKS:
        raise TypeError(f"recipes/{module_name}.py: TASK must be one of {TASKS}, got {module.TASK!r}")
    return Recipe(
        name=module_name,
        module=module,
        title=title,
        idea=idea,
        family=module.FAMILY,
        papers=tuple(module.PAPERS),
        task=module.TASK,
        builders=builders,
        blocks=dict(module.BLOCKS),
        demo=dict(module.DEMO),
        stages=tuple(module.STAGES),
        default_builder=getattr(module, "DEFAULT_BUILDER", next(iter(builders))),
    )


def names() -> list[str]:
    """Names of all recipes, sorted."""
    found = pkgutil.iter_modules(_recipes_package.__path__)
    return sorted(info.name for info in found if not info.name.startswith("_"))


def all_recipes() -> list[Recipe]:
    return [_load(name) for name in names()]


def get(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name raises UnknownNameError with close matches."""
    if not isinstance(name, str):
        raise TypeError(f"recipe name must be a str, got {type(name).__name__}")
    if name not in names():
        raise UnknownNameError(_unknown("recipe", name, names()))
    return _load(name)


def all_builders() -> list[tuple[Recipe, str]]:
    """Every (recipe, builder name) pair, for tests parameterized over builders."""
    return [(recipe, builder) for recipe in all_recipes() for builder in recipe.builders]
