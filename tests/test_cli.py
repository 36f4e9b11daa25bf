"""The command line: every command, its errors, and the standalone copy."""

import os
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import pytest

from cookbook import cli, registry, runtime, tasks
from cookbook import data as cdata
from cookbook import train as ctrain
from recipe_fixtures import SMALL


def run_cli(*argv, cwd=None):
    """Run the real console entry point in a subprocess: exit code, stdout, stderr."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "cookbook.cli", *argv], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300, check=False)
    return done.returncode, done.stdout, done.stderr


def test_list_shows_family_paper_and_recorded_parameters(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "residual" in out and "Residual networks" in out and "He, Zhang" in out
    assert "25,636,712" in out  # ResNet50, as keras.applications counts it (references.md)
    assert all(name in out for name in registry.names())


def test_show_prints_each_fact_once_and_numbers_as_written(capsys):
    assert cli.main(["show", "Xception"]) == 0  # names ignore case
    out = capsys.readouterr().out
    assert out.startswith("xception: Xception")
    assert out.count("Deep Learning with Depthwise Separable Convolutions") == 1  # the paper, once
    assert "22,910,480 parameters" in out and "keras.applications.Xception" in out
    assert "learning rate 0.005" in out and "dropout=0.2" in out
    assert "separable_residual_block(x, filters, *, name=None)" in out
    assert "xception.feature_stages(model)" in out


def test_show_prints_the_keras_applications_signature_and_the_blocks(capsys):
    assert cli.main(["show", "residual"]) == 0
    out = capsys.readouterr().out
    assert "resnet50(include_top=True, weights=None, input_tensor=None, input_shape=None" in out
    assert "keras.applications.ResNet50" in out
    assert "bottleneck_block" in out and "preprocess_input" not in out.split("blocks:")[1]


def test_summary_with_builder_and_input_shape(capsys):
    assert cli.main(["summary", "XCEPTION", "--builder", "Mini_Xception", "--input-shape", "64,64,1"]) == 0
    out = capsys.readouterr().out
    assert "block1_sepconv1" in out and "(None, 64, 64, 1)" in out


@pytest.mark.parametrize(
    "argv, code, words",
    [
        (["show", "resnett"], 2, "did you mean"),
        (["summary", "residual", "--builder", "resnet5"], 2, "resnet50"),
        (["summary", "xception", "--input-shape", "64,x"], 1, "--input-shape"),
        (["summary", "xception", "--input-shape", "10,10,3"], 1, "input_shape"),
        (["train", "xception", "--batch-size", "0"], 2, "--batch-size"),
        (["train", "xception", "--learning-rate", "fast"], 2, "--learning-rate"),
        (["render", "xception", "--jobs", "0"], 2, "--jobs"),
        (["train", "xception", "--output", "model.h5"], 1, "--output"),
        (["copy", "xception", "notes.txt"], 1, "DEST"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(capsys, tmp_path, monkeypatch, argv, code, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("a file that is not a recipe\n")
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert words in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_train_help_lists_the_datasets_and_targets(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for name in (*cli.BUILTIN_DATASETS, *cli.REAL_DATASETS, *cli.TARGETS, "--output", "--no-jit"):
        assert name in out


def test_the_cli_lists_are_the_modules_lists():
    """The CLI keeps its own copy so that --help needs neither NumPy nor Keras."""
    assert sorted(cli.REAL_DATASETS) == sorted(cdata.REAL_DATASETS)
    assert cli.TARGETS == ctrain.TARGETS
    assert all(callable(getattr(cdata, name, None)) for name in cli.BUILTIN_DATASETS)


def _fake_train_recipe(calls, model):
    def train_recipe(name, **kwargs):
        calls.append((name, kwargs))
        metrics = {"test_accuracy": 0.953125, "epochs": 8, "params": 14346, "train_seconds": 3.5}
        return types.SimpleNamespace(model=model, metrics=metrics)

    return train_recipe


def test_train_passes_its_options_saves_the_model_and_prints_integers(capsys, tmp_path, monkeypatch):
    recipe = registry.get("xception")
    model = recipe.builder("mini_xception")(**SMALL["xception"]["mini_xception"])
    calls = []
    monkeypatch.setattr(ctrain, "train_recipe", _fake_train_recipe(calls, model))
    path = tmp_path / "out" / "mini.keras"
    argv = ["train", "XCEPTION", "--epochs", "2", "--batch-size", "32", "--learning-rate", "0.01", "--no-jit",
            "--dataset", "cluttered_digits", "--output", str(path)]
    assert cli.main(argv) == 0
    assert calls == [("xception", {"dataset": "cluttered_digits", "epochs": 2, "quick": False, "batch_size": 32,
                                   "learning_rate": 0.01, "jit_compile": False})]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("xception: test_accuracy=0.9531") and "epochs=8 " in last
    assert "params=14,346" in last and "8.0000" not in last and "wall" in last
    assert [p.name for p in path.parent.iterdir()] == ["mini.keras"]  # no temp file left behind
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 1, (2, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_train_compiles_by_default(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(ctrain, "train_recipe", _fake_train_recipe(calls, None))
    assert cli.main(["train", "xception", "--quick"]) == 0
    assert calls == [("xception", {"dataset": None, "epochs": None, "quick": True})]  # fit's default: "auto"


# --- copy ------------------------------------------------------------------------------


def test_copy_refuses_to_overwrite_without_force(tmp_path, capsys):
    assert cli.main(["copy", "residual", str(tmp_path)]) == 0
    target = tmp_path / "residual.py"
    target.write_text("# the user's edits\n")
    assert cli.main(["copy", "residual", str(tmp_path)]) == 1
    assert "--force" in capsys.readouterr().err
    assert target.read_text() == "# the user's edits\n"
    assert cli.main(["copy", "residual", str(target), "--force"]) == 0
    assert target.read_text() == registry.get("residual").source


@pytest.mark.parametrize("dest, written", [("models/", "models/vgg.py"), ("models", "models/vgg.py"),
                                           ("deep/er/", "deep/er/vgg.py"), ("mine.py", "mine.py")])
def test_copy_creates_a_missing_folder(tmp_path, monkeypatch, dest, written):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["copy", "VGG", dest]) == 0
    assert (tmp_path / written).read_text() == registry.get("vgg").source


def test_copy_to_an_unwritable_path_fails_cleanly(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that ignores permissions (root)")
        assert cli.main(["copy", "residual", str(locked / "r.py")]) == 1
        assert "cannot write" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_copy_into_a_folder_that_cannot_be_made_fails_cleanly(tmp_path, capsys):
    assert cli.main(["copy", "residual", "/proc/no-such-dir/r.py"]) == 1
    err = capsys.readouterr().err
    assert "cannot write /proc/no-such-dir/r.py" in err and "Traceback" not in err


def test_list_show_and_copy_answer_without_importing_keras(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        from cookbook import cli
        for argv in (["list"], ["show", "inception_v3"], ["copy", "densenet", {str(tmp_path)!r}]):
            assert cli.main(argv) == 0, argv
        print(sorted(name for name in ("keras", "tensorflow", "jax", "torch", "numpy") if name in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# The copied files run where the cookbook cannot be imported: `import cookbook` fails
# there, and only the project folder and the installed keras/numpy are on the path.
STANDALONE = """
import sys
sys.modules["cookbook"] = None  # importing it now raises ImportError
sys.modules["recipes"] = None
import importlib
import numpy as np
from models.xception import xception  # the README's example
assert xception.__module__ == "models.xception"

rng = np.random.default_rng(0)
for name, builder, kwargs, labels in {cases!r}:
    model = getattr(importlib.import_module("models." + name), builder)(**kwargs)
    x = rng.uniform(0, 1, size=(2, *model.input_shape[1:])).astype("float32")
    outputs = model(x)  # forward
    shapes = [tuple(o.shape) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
    if not labels:  # an image, a mask, a reconstruction or a GAN's two logits
        targets, loss = [rng.uniform(0, 1, size=shape).astype("float32") for shape in shapes], "mse"
    else:
        targets, loss = [rng.integers(0, shape[-1], size=(2,)) for shape in shapes], "sparse_categorical_crossentropy"
    # One eager SGD step: tracing a graph of DenseNet-121 costs minutes on 2 cores.
    model.compile(optimizer="sgd", loss=[loss] * len(shapes), run_eagerly=True)
    loss_value = float(np.ravel(model.train_on_batch(x, targets))[0])
    assert np.isfinite(loss_value), (name, loss_value)
    print(name, builder, "ok")
"""


# A fresh interpreter that builds and steps every recipe: about 40 s, so `make test` runs it.
@pytest.mark.heavy
def test_copied_recipes_run_where_the_cookbook_is_not_importable(tmp_path):
    """The README's example in an empty project, for every recipe: copy into ./models/, then
    a forward pass and a training step of the default builder at its small configuration."""
    code, out, err = run_cli("copy", "xception", "./models/", cwd=tmp_path)
    assert code == 0 and "models/xception.py" in out, err
    cases = []
    for recipe in registry.all_recipes():
        if recipe.name != "xception":
            assert cli.main(["copy", recipe.name, str(tmp_path / "models") + os.sep]) == 0
        small = SMALL[recipe.name][recipe.default_builder]
        cases.append((recipe.name, recipe.default_builder, small, tasks.get(recipe.task).target == "labels"))
    done = subprocess.run([sys.executable, "-c", STANDALONE.format(cases=cases)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:-1] == [f"{name} {builder} ok" for name, builder, _, _ in cases]

    code, _, err = run_cli("copy", "xception", "./models/", cwd=tmp_path)
    assert code == 1 and "--force" in err and "Traceback" not in err


@pytest.mark.heavy  # trains for real in a subprocess
def test_train_end_to_end_saves_a_model_that_loads_in_safe_mode(tmp_path):
    path = tmp_path / "xception.keras"
    code, out, err = run_cli("train", "xception", "--quick", "--epochs", "1", "--output", str(path))
    assert code == 0, err
    assert "test_accuracy=" in out and "epochs=1 " in out and "wall" in out.strip().splitlines()[-1]
    assert keras.saving.load_model(path, safe_mode=True).count_params() > 0


def test_unknown_recipe_from_the_console_exits_2_without_traceback():
    code, _, err = run_cli("show", "xceptoin")
    assert code == 2
    assert err.strip().startswith("cookbook: error: unknown recipe 'xceptoin'; did you mean xception")
    assert len(err.strip().splitlines()) == 1


def test_the_command_line_asks_for_onednn_but_an_explicit_setting_wins(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert cli.main(["list"]) == 0
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    runtime.prefer_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="Grappler is TensorFlow's")
def test_commands_that_use_keras_turn_grappler_off(capsys):
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})
    try:
        assert cli.main(["list"]) == 0  # no Keras: leaves TensorFlow's settings alone
        assert not tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer")
        assert cli.main(["summary", "xception", "--builder", "mini_xception", "--input-shape", "32,32,1"]) == 0
        assert tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"] is True
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})
