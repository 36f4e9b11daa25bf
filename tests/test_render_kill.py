"""A killed render leaves no partial figure or page, and the rerun does only what is missing.

Three render processes over two small recipes, into a temporary docs folder, quick mode:

1. killed with SIGTERM (SIGKILL if it lingers) once the first recipe is complete and the
   second one has started writing;
2. killed with SIGKILL while it redoes the second recipe;
3. left to finish.

All the while the test polls the assets folder: every PNG must open and decode, every
JSON must parse, every Markdown/text file must be complete UTF-8 ending in a newline.
Temp files (``.name.XXXX.ext``, how cookbook.io writes) are allowed only while a render
runs. Before the last run the test also leaves a temp file behind, as a SIGKILL in the
middle of a write would, and the finished rerun must have removed it. The first recipe,
complete before the first kill, must not be redone by the reruns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cookbook import registry

ROOT = Path(__file__).resolve().parents[1]
PREFERRED = ("autoencoder", "vgg", "alexnet", "residual")  # small demos first
POLL_S = 0.2
RUN_TIMEOUT_S = 600

render = pytest.importorskip("cookbook.render", reason="cookbook/render.py is not there yet")


def _two_recipes():
    names = registry.names()
    chosen = [name for name in PREFERRED if name in names][:2]
    return chosen + [name for name in names if name not in chosen][: 2 - len(chosen)]


NAMES = _two_recipes()


class Watcher:
    """Checks every file in the assets folder on every poll; remembers what it saw."""

    def __init__(self, docs_dir):
        self.assets = Path(docs_dir) / "assets" / "recipes"
        self.polls = 0
        self.checked = 0
        self.temp_seen = set()

    def folder(self, name):
        return self.assets / name

    def files(self, name):
        folder = self.folder(name)
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def temp_files(self):
        return sorted(p for p in self.assets.rglob(".*") if p.is_file()) if self.assets.is_dir() else []

    def poll(self, running=True):
        self.polls += 1
        if not self.assets.is_dir():
            return
        for path in self.assets.rglob("*"):
            if not path.is_file():
                continue
            if path.name.startswith("."):
                self.temp_seen.add(path.name)
                assert running, f"temp file left behind after the render stopped: {path}"
                continue
            try:
                _check_complete(path)
            except FileNotFoundError:  # replaced between listing and reading: check it next poll
                continue
            self.checked += 1


def _check_complete(path: Path):
    data = path.read_bytes()
    assert data, f"empty file: {path}"
    if path.suffix == ".png":
        from PIL import Image
        import io

        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # structure and CRCs
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # every pixel decodes: a truncated PNG fails here
            assert image.size[0] > 0 and image.size[1] > 0
    elif path.suffix == ".json":
        json.loads(data.decode("utf-8"))
    elif path.suffix in (".md", ".txt"):
        text = data.decode("utf-8")
        assert text.endswith("\n"), f"{path} does not end with a newline: cut off?"


def _start(names, docs_dir, log, jobs=1):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "cookbook.render", *names, "--quick", "--device", "cpu",
               "--docs-dir", str(docs_dir), "--jobs", str(jobs)]
    handle = open(log, "w", encoding="utf-8")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    process.log_handle = handle
    return process


def _log(process):
    if not process.log_handle.closed:
        process.log_handle.flush()
    return Path(process.log_handle.name).read_text(encoding="utf-8", errors="replace")[-4000:]


def _watch_until(process, watcher, condition, what):
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        watcher.poll()
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the render exited (rc {process.returncode}) before {what}:\n{_log(process)}")
        time.sleep(POLL_S)
    process.kill()
    pytest.fail(f"timed out waiting for {what}:\n{_log(process)}")


def _kill(process, watcher, sig):
    process.send_signal(sig)
    deadline = time.monotonic() + 15
    while process.poll() is None:
        watcher.poll()
        if time.monotonic() > deadline and sig != signal.SIGKILL:
            process.kill()  # SIGTERM was not enough: SIGKILL
            sig = signal.SIGKILL
            deadline = time.monotonic() + 15
        time.sleep(0.05)
    process.wait()
    process.log_handle.close()


def _run_to_the_end(process, watcher):
    """Poll the files until the render exits; it must succeed. Returns its log."""
    while process.poll() is None:
        watcher.poll()
        time.sleep(POLL_S)
    process.log_handle.close()
    output = _log(process)
    assert process.returncode == 0, output
    watcher.poll(running=False)
    return output


def _modified_since(watcher, name, since):
    return any(p.stat().st_mtime_ns > since for p in watcher.files(name) if not p.name.startswith("."))


def _snapshot(watcher, name):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in watcher.files(name)}


@pytest.mark.heavy  # three render processes, each importing TensorFlow and training: ~70 s on 2 cores
def test_killed_render_leaves_no_partial_file_and_resumes(tmp_path):
    first, second = NAMES
    docs = tmp_path / "docs"
    watcher = Watcher(docs)
    recipes = {name: registry.get(name) for name in NAMES}

    # 1. SIGTERM once the first recipe is complete and the second has started.
    run = _start(NAMES, docs, tmp_path / "run1.log")
    _watch_until(run, watcher, lambda: (watcher.folder(first) / "manifest.json").is_file()
                 and any(not p.name.startswith(".") for p in watcher.files(second)),
                 f"{first} to finish and {second} to start")
    _kill(run, watcher, signal.SIGTERM)
    watcher.poll()  # every finished file complete (a temp file may stay: the kill can land mid-write)
    leftovers = [p.name for p in watcher.temp_files()]
    for path in watcher.temp_files():  # a kill mid-write may leave one: the rerun must clear it
        assert path.parent.name == second, f"temp file in a finished recipe's folder: {path}"
    assert render.up_to_date(recipes[first], watcher.folder(first), True), f"{first} is not complete"
    assert not (watcher.folder(second) / "manifest.json").is_file(), (
        f"{second} finished before the kill: the test did not kill a render mid-run")
    done_first = _snapshot(watcher, first)

    # 2. SIGKILL while the rerun redoes the second recipe.
    started = time.time_ns()
    run = _start(NAMES, docs, tmp_path / "run2.log")
    _watch_until(run, watcher, lambda: _modified_since(watcher, second, started), f"the rerun to write {second}")
    _kill(run, watcher, signal.SIGKILL)
    assert not (watcher.folder(second) / "manifest.json").is_file(), f"{second} finished before the SIGKILL"
    assert _snapshot(watcher, first) == done_first, f"the rerun redid {first}, which was complete"

    # What a SIGKILL in the middle of cookbook.io's write leaves: a half-written temp file.
    planted = watcher.folder(second) / ".training.md.killed0.md"
    planted.write_text("The demo build trained for", encoding="utf-8")

    # 3. The last run finishes: only the second recipe is redone.
    output = _run_to_the_end(_start(NAMES, docs, tmp_path / "run3.log"), watcher)
    assert _snapshot(watcher, first) == done_first, f"the last run redid {first}, which was complete"
    assert f"{first}: up to date" in output, output
    assert f"{second}: rendered" in output, output
    for name, recipe in recipes.items():
        manifest = render.up_to_date(recipe, watcher.folder(name), True)
        assert manifest, f"{name}: the manifest does not match the recipe, the settings or its files"
        present = sorted(p.name for p in watcher.files(name))
        assert present == sorted([*manifest["files"], "manifest.json"]), f"{name}: {present} vs its manifest"
        if hasattr(render, "expected_files"):
            assert present == sorted(render.expected_files(recipe)), f"{name}: {present}"
    assert not watcher.temp_files(), f"temp files left after the rerun: {watcher.temp_files()}"
    assert watcher.polls > 10 and watcher.checked > 0
    print(f"render kill test: {watcher.polls} polls, {watcher.checked} file checks, "
          f"temp files seen while running: {len(watcher.temp_seen)}, left by the SIGTERM: {leftovers}")


def _children(pid):
    """The live child processes of ``pid``, from /proc (a zombie counts as gone)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if int(ppid) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc to find the workers")
@pytest.mark.heavy  # two render processes of two workers each: ~60 s on 2 cores
def test_a_killed_render_of_two_at_a_time_stops_its_workers_and_resumes(tmp_path):
    """Rendering two recipes at a time, each in a worker process: a SIGKILL of the command
    must stop the workers too (none may go on writing), and the rerun finishes both."""
    docs = tmp_path / "docs"
    watcher = Watcher(docs)
    run = _start(NAMES, docs, tmp_path / "run1.log", jobs=2)
    _watch_until(run, watcher, lambda: len(_children(run.pid)) >= 2 and all(
        any(not p.name.startswith(".") for p in watcher.files(name)) for name in NAMES),
        "both workers to start writing")
    workers = _children(run.pid)
    _kill(run, watcher, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert not any(map(_alive, workers)), f"workers {workers} outlived the killed render"

    _run_to_the_end(_start(NAMES, docs, tmp_path / "run2.log", jobs=2), watcher)
    for name in NAMES:
        assert render.up_to_date(registry.get(name), watcher.folder(name), True), f"{name} is not complete"
    assert not watcher.temp_files(), f"temp files left after the rerun: {watcher.temp_files()}"
