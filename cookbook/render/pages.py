"""The generated Markdown of a recipe page, made from its manifest alone.

Every number and caption below is read from ``manifest.json``; ``snippets(manifest)``
is a pure function, so the tests can check that a page says what was measured.
"""

from __future__ import annotations


def _asset(manifest, filename):
    return f"../assets/recipes/{manifest['recipe']}/{filename}"


def _percent(value):
    return f"{100 * value:.1f}%"


def _cols(n):
    return f'{{ data-cols="{n}" }}'


OPTIMIZER_NAMES = {"adamw": "AdamW", "sgd": "SGD with Nesterov momentum"}


def training(manifest):
    m, demo = manifest["metrics"], manifest["demo"]
    sizes = demo["sizes"]
    epochs = int(m["epochs"])
    note = (f" Early stopping ended it before the {demo['epochs']} epochs the demo asks for."
            if epochs < demo["epochs"] else "")
    lines = [(f"The demo build, `{demo['call']}`, trained for {epochs} epoch{'s' if epochs != 1 else ''} on "
             f"`{demo['dataset']}` ({sizes[0]:,} training, {sizes[1]:,} validation and {sizes[2]:,} test "
             f"examples) in {m['train_seconds']:.0f} s on {manifest['device']}: batches of "
             f"{demo.get('batch_size', 64)}, {OPTIMIZER_NAMES[demo.get('optimizer', 'adamw')]} with a peak "
             f"learning rate of {demo.get('learning_rate', 1e-3):g}"
             f"{', augmentation: ' + str(demo['augment']) if demo.get('augment') else ''}."
             f"{note}\n"),
             f"![Training curve of the {manifest['recipe']} demo]({_asset(manifest, 'curve.png')})\n"]
    if "test_accuracy" in m:
        lines.append(f"**Test accuracy: {m['test_accuracy']:.3f}** on {sizes[2]:,} held-out examples "
                     f"({m['params']:,} parameters, {m['macs'] / 1e6:.1f} M multiply-adds per example).\n")
    if "psnr_gain_db" in m:
        lines.append(f"**Denoising gain: {m['psnr_gain_db']:.1f} dB** of PSNR on {sizes[2]:,} held-out images: "
                     f"the noisy inputs are at {m['input_psnr']:.1f} dB, the outputs at {m['test_psnr']:.1f} dB "
                     f"({m['params']:,} parameters).\n")
    return "\n".join(lines)


def filters(manifest):
    sections = []
    for stage in manifest["filters"]:
        name, units = stage["stage"], stage["units"]
        if not units:
            why = ("every mean activation on the held-out images was zero" if not stage["candidates"] else
                   f"the gradient ascent moved none of the {stage['candidates']} units that respond most")
            sections.append(f"#### `{name}`\n\n*Nothing to show for `{name}`: {why}.*\n")
            continue
        shown = ", ".join(str(u) for u in units)
        grid = "×".join(str(g) for g in stage["grid"])
        unit_word = "the unit" if len(units) == 1 else f"the {len(units)}"
        sections.append(
            f"#### `{name}`\n\n"
            f"![Units {shown} of {name}]({_asset(manifest, f'filters_{name}.png')})"
            f"{_cols(4 if stage['receptive_field'] else len(units))}\n\n"
            f"*Units {shown} of {stage['channels']} in `{name}` ({grid} map): {unit_word} with the highest "
            f"mean activation on held-out images whose gradient ascent moved (of the "
            f"{stage['candidates']} that responded most). {_tiles(stage)}*\n")
    return "\n".join(sections)


def _tiles(stage):
    field, patch = stage["receptive_field"], stage["patch"]
    ascent = "the input that excites the unit, by regularized gradient ascent"
    if field is None:  # a transposed convolution before the layer: no input patch is its field
        return f"Each tile is {ascent} (no dataset examples: a transposed convolution precedes this layer)."
    if patch < field:
        examples = f"the held-out inputs that excite it most (its {field}-px receptive field covers them whole)"
    else:
        examples = f"the held-out patches under its {field}-px receptive field that excite it most"
    return f"Left: {ascent}; right: {examples}."


def _same(m):
    return ": in this network they are the same layer, so the two rows agree" if _one_layer(m) else ""


def _one_layer(m):
    return m["last_layer"] == m["gradcam_layer"]


def _last_score(m):
    if _one_layer(m):
        return ""
    verdict = ("its coarser map has fewer places to point" if m["pointing_game_last"] < m["pointing_game"]
               else "here the coarser map points as well")
    return f" From `{m['last_layer']}` it scores {m['pointing_game_last']:.2f}: {verdict}."


def gradcam(manifest):
    m = manifest["metrics"]
    grid, last = m["gradcam_grid"], m["last_grid"]
    ratio = m["pointing_game"] / max(m["pointing_game_random"], 1e-9)
    contrast = m["gradcam_classes"]
    return (
        f"![Grad-CAM at two depths]({_asset(manifest, 'gradcam.png')}){_cols(4)}\n\n"
        f"*Held-out images (the green box is where the digit is), the Grad-CAM of the predicted class "
        f"from `{m['gradcam_layer']}` ({grid[0]}×{grid[1]} map), and from the last layer with a spatial "
        f"map, `{m['last_layer']}` ({last[0]}×{last[1]}){_same(m)}.*\n\n"
        f"**Pointing game: {m['pointing_game']:.2f}** from `{m['gradcam_layer']}` on {m['pointing_images']} "
        f"held-out images (averaged over classes, as Zhang et al. 2016 do): the share whose Grad-CAM maximum "
        f"falls inside the digit's box. A map pointing at random would score {m['pointing_game_random']:.2f} "
        f"(the box's mean share of the canvas), so this is {ratio:.1f}× chance.{_last_score(m)}\n\n"
        f"![Grad-CAM for two classes]({_asset(manifest, 'gradcam_classes.png')}){_cols(3)}\n\n"
        f"*One image, two questions: where is the evidence for class {contrast['predicted']} (the prediction), "
        f"and where for class {contrast['other']} (the runner-up)?*\n")


def evidence(manifest):
    grid = manifest["metrics"]["evidence_grid"]
    return (f"![Per-patch evidence]({_asset(manifest, 'evidence.png')}){_cols(4)}\n\n"
            f"*Per-patch evidence: the classifier applied to each of the {grid[0]}×{grid[1]} local features "
            f"(`patch_logits=True`, with the trained weights). Red patches vote for the true digit, blue "
            f"against; the image's logit is their average.*\n")


def reconstructions(manifest):
    m = manifest["metrics"]
    return (f"![Inputs, targets and outputs]({_asset(manifest, 'reconstructions.png')}){_cols(4)}\n\n"
            f"*Held-out noisy inputs ({m['input_psnr']:.1f} dB), the clean targets, and what the trained "
            f"autoencoder makes of them ({m['test_psnr']:.1f} dB over the test set).*\n")


def audio(manifest):
    return (f"![Waveform, spectrogram and saliency]({_asset(manifest, 'audio.png')})\n\n"
            f"*Held-out clips: the waveform, its spectrogram, and the saliency over time (the gradient of "
            f"the predicted class's logit with respect to each sample, smoothed): where in time the network "
            f"looks.*\n")


def diagram(manifest):
    name = manifest["recipe"]
    files = manifest["files"]
    parts = []
    if "diagram.svg" in files:
        parts.append(f"![Block diagram of the {name} demo build]({_asset(manifest, 'diagram.svg')})\n\n"
                     f"*One node per stem, block, module or head of the demo build "
                     f"({manifest['metrics']['diagram_nodes']} nodes), with its output shape and parameters.*\n")
    if "graph.png" in files:
        parts.append(f"[The full layer graph]({_asset(manifest, 'graph.png')}) (from `keras.utils.plot_model`).\n")
    return "\n".join(parts) or "*The block diagram needs graphviz; the cost table above lists the blocks.*\n"


def footer(manifest):
    versions = ", ".join(f"{name} {version}" for name, version in sorted(manifest["versions"].items()))
    mode = " (quick render)" if manifest["key"]["quick"] else ""
    return (f"---\n\n<small>Rendered{mode} by `cookbook render` on {manifest['device']}, Keras backend "
            f"`{manifest['backend']}`, in {manifest['seconds']:.0f} s. Versions: {versions}.</small>\n")


TASK_VIEWS = {"gradcam": gradcam, "evidence": evidence, "reconstructions": reconstructions, "audio": audio}


def snippets(manifest) -> dict:
    """{file name: Markdown} of every generated snippet of a recipe page."""
    views = [TASK_VIEWS[view](manifest) for view in manifest["views"]]
    return {
        "training.md": training(manifest),
        "filters.md": filters(manifest),
        "task.md": "\n".join(views),
        "diagram.md": diagram(manifest),
        "footer.md": footer(manifest),
    }
