"""The command line: every command, its errors, and the standalone copy."""

import os
import subprocess
import sys
import textwrap

import pytest

from cookbook import cli, registry


def run_cli(*argv):
    """Run the real console entry point in a subprocess: exit code, stdout, stderr."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "cookbook.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=300)
    return done.returncode, done.stdout, done.stderr


def test_list_shows_family_paper_and_counted_parameters(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(registry, "all_recipes", lambda: [registry.get("residual")])  # keep it fast
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "residual" in out and "Residual networks" in out and "He, Zhang" in out
    assert "25,636,712" in out  # ResNet50, as keras.applications counts it (references.md)
    assert (tmp_path / "keras-cookbook" / "params.json").exists()


def test_show_prints_idea_builders_and_blocks(capsys):
    assert cli.main(["show", "residual"]) == 0
    out = capsys.readouterr().out
    assert "resnet50" in out and "keras.applications.ResNet50" in out
    assert "bottleneck_block" in out and "shortcut" in out


def test_summary_with_builder_and_input_shape(capsys):
    assert cli.main(["summary", "xception", "--builder", "mini_xception", "--input-shape", "64,64,1"]) == 0
    out = capsys.readouterr().out
    assert "block1_sepconv1" in out and "(None, 64, 64, 1)" in out


@pytest.mark.parametrize(
    "argv, code, words",
    [
        (["show", "resnett"], 2, "did you mean"),
        (["summary", "residual", "--builder", "resnet5"], 2, "resnet50"),
        (["summary", "xception", "--input-shape", "64,x"], 1, "--input-shape"),
        (["summary", "xception", "--input-shape", "10,10,3"], 1, "input_shape"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(capsys, argv, code, words):
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert words in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_copy_refuses_to_overwrite_without_force(tmp_path, capsys):
    assert cli.main(["copy", "residual", str(tmp_path)]) == 0
    target = tmp_path / "residual.py"
    target.write_text("# the user's edits\n")
    assert cli.main(["copy", "residual", str(tmp_path)]) == 1
    assert "--force" in capsys.readouterr().err
    assert target.read_text() == "# the user's edits\n"
    assert cli.main(["copy", "residual", str(target), "--force"]) == 0
    assert target.read_text() == registry.get("residual").source


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


def test_copy_into_a_missing_folder_fails_cleanly(tmp_path, capsys):
    assert cli.main(["copy", "residual", "/proc/no-such-dir/r.py"]) == 1
    err = capsys.readouterr().err
    assert "cannot write /proc/no-such-dir/r.py" in err and "Traceback" not in err


@pytest.mark.heavy  # subprocesses / long training: runs in make test, not the default suite
def test_copied_xception_builds_where_the_cookbook_is_not_importable(tmp_path):
    """The issue's acceptance test: copy, then build in a process that cannot import cookbook."""
    code, out, err = run_cli("copy", "xception", f"{tmp_path}/")
    assert code == 0, err
    script = textwrap.dedent(
        """
        import sys
        sys.modules["cookbook"] = None  # importing it now raises ImportError
        sys.modules["recipes"] = None
        sys.path.insert(0, ".")
        import xception
        model = xception.xception()
        print(model.name, model.count_params())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["xception", "22910480"]  # references.md: Xception 22,910,480

    code, _, err = run_cli("copy", "xception", f"{tmp_path}/")
    assert code == 1 and "--force" in err and "Traceback" not in err


def test_unknown_recipe_from_the_console_exits_2_without_traceback():
    code, out, err = run_cli("show", "xceptoin")
    assert code == 2
    assert err.strip().startswith("cookbook: error: unknown recipe 'xceptoin'; did you mean xception")
    assert len(err.strip().splitlines()) == 1


def test_the_command_line_asks_for_onednn_but_an_explicit_setting_wins(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    cli.prefer_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    cli.prefer_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
