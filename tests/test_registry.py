"""The registry: metadata read from the recipe files, names in any case, the recorded
parameter counts, and the installed namespace (cookbook.recipes)."""

import ast
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

from cookbook import registry

ROOT = Path(__file__).resolve().parents[1]
RECIPES = registry.all_recipes()


def test_names_are_the_recipe_files():
    assert registry.names() == sorted(p.stem for p in (ROOT / "recipes").glob("*.py") if not p.stem.startswith("_"))
    assert [recipe.name for recipe in RECIPES] == registry.names()


def test_names_ignore_case():
    recipe = registry.get("Inception_V3")
    assert recipe.name == "inception_v3"
    assert recipe.builder_name("INCEPTION_V3") == "inception_v3"
    assert registry.get("residual").builder("ResNet18").__name__ == "resnet18"
    with pytest.raises(registry.UnknownNameError, match="did you mean resnet50"):
        registry.get("residual").builder("resnet5")
    with pytest.raises(TypeError, match="must be a str"):
        registry.get(3)


def test_constants_may_name_earlier_constants(tmp_path, monkeypatch):
    _write_recipe(tmp_path, """
        _TWIN = {"twin": None}
        BUILDERS = {"toy": {**_TWIN, "params": 3}}
        def toy(include_top=True):
            pass
        def feature_stages(model):
            return []
        """)
    monkeypatch.setattr(registry, "_FOLDER", tmp_path)
    assert registry.get("toy").builders == {"toy": {"twin": None, "params": 3}}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_metadata_read_from_the_file_is_the_modules(recipe):
    module = recipe.module
    assert recipe.module.__name__ == f"cookbook.recipes.{recipe.name}"
    assert recipe.path == Path(module.__file__)
    assert (recipe.builders, recipe.demo, recipe.papers) == (module.BUILDERS, module.DEMO, tuple(module.PAPERS))
    assert recipe.title == inspect.getdoc(module).split("\n")[0]
    public = [name for name, value in vars(module).items() if inspect.isfunction(value)
              and value.__module__ == module.__name__ and not name.startswith("_")]
    blocks = [name for name in public if list(inspect.signature(vars(module)[name]).parameters)[:1] == ["x"]
              and name not in recipe.builders and name not in registry._NOT_BLOCKS]
    assert list(recipe.blocks) == blocks


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_signatures_read_from_the_file_are_the_functions(recipe):
    for name, signature in recipe.signatures.items():
        function = getattr(recipe.module, name)
        parsed = ast.parse(f"def f{signature.parameters}: pass").body[0].args
        written = [arg.arg for arg in (*parsed.posonlyargs, *parsed.args, *parsed.kwonlyargs)]
        assert written == list(inspect.signature(function).parameters), name
        assert signature.summary == (inspect.getdoc(function) or "").split("\n")[0], name


# Builds every full-size default model (about 30 s): `make test` runs it.
@pytest.mark.heavy
def test_every_default_build_records_its_parameter_count():
    """BUILDERS records the default build's count, so `cookbook list` need not build it."""
    for recipe in RECIPES:
        recorded = recipe.params()
        assert isinstance(recorded, int), f"recipes/{recipe.name}.py: BUILDERS[{recipe.default_builder!r}]['params']"
        assert recipe.builder()().count_params() == recorded, recipe.name
        keras.backend.clear_session(free_memory=False)


def _write_recipe(folder, body):
    folder.mkdir(exist_ok=True)
    (folder / "toy.py").write_text(textwrap.dedent('''\
        """Toy: a title.

        The idea.
        """

        FAMILY = "Toys"
        PAPERS = ("Nobody 2024.",)
        TASK = "classification"
        DEMO = {"builder": "toy", "kwargs": {}}
        ''') + textwrap.dedent(body))


@pytest.mark.parametrize("body, error", [
    ("BUILDERS = {'toy': {}}\ndef feature_stages(model):\n    pass\n", "defines no such function"),
    ("BUILDERS = dict(toy={})\ndef toy():\n    pass\n", "lacks the contract constants ['BUILDERS']"),
    ("BUILDERS = {'toy': {}}\ndef toy():\n    pass\n", "must define feature_stages(model)"),
])
def test_a_broken_recipe_file_is_named(tmp_path, monkeypatch, body, error):
    _write_recipe(tmp_path, body)
    monkeypatch.setattr(registry, "_FOLDER", tmp_path)
    with pytest.raises(TypeError, match="recipes/toy.py") as raised:
        registry.get("toy")
    assert error in str(raised.value)


def test_a_users_own_recipes_package_does_not_hide_the_cookbooks(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "__init__.py").write_text("MINE = True\n")
    script = "import recipes; from cookbook import registry; print(recipes.MINE, registry.names())"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"True {registry.names()}"


def test_pyproject_installs_every_package_folder():
    """packages is a list (recipes/ maps onto cookbook.recipes, which find cannot see)."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "cookbook").rglob("__init__.py")}
    assert set(config["packages"]) == folders | {"cookbook.recipes"}
    assert config["package-dir"] == {"cookbook.recipes": "recipes"}
