"""The generated Markdown of a recipe page, made from its manifest alone.

Every number and caption below is read from ``manifest.json``; ``snippets(manifest)``
is a pure function, so the tests can check that a page says what was measured.
"""

from __future__ import annotations

import math


def _asset(manifest, filename):
    return f"../assets/recipes/{manifest['recipe']}/{filename}"


def where(manifest):
    """The device a render ran on, and how many renders shared it."""
    side_by_side = manifest.get("side_by_side", 1)
    return manifest["device"] + (f" ({side_by_side} recipes rendered at a time)" if side_by_side > 1 else "")


def _percent(value):
    return f"{100 * value:.1f}%"


def _cols(n):
    return f'{{ data-cols="{n}" }}'


# How each optimizer the demos use is named on a page, with how its learning rate is set.
OPTIMIZER_NAMES = {"adamw": "AdamW with a peak learning rate", "sgd": "SGD with Nesterov momentum with a peak learning rate",
                   "adam": "one Adam (β₁ = 0.5) for each player, with a constant learning rate"}


def training(manifest):
    m, demo = manifest["metrics"], manifest["demo"]
    sizes = demo["sizes"]
    epochs = int(m["epochs"])
    note = (f" Early stopping ended it before the {demo['epochs']} epochs the demo asks for."
            if epochs < demo["epochs"] else "")
    lines = [(f"The demo build, `{demo['call']}`, trained for {epochs} epoch{'s' if epochs != 1 else ''} on "
             f"`{demo['dataset']}` ({sizes[0]:,} training, {sizes[1]:,} validation and {sizes[2]:,} test "
             f"examples) in {m['train_seconds']:.0f} s on {where(manifest)}: batches of "
             f"{demo.get('batch_size', 64)}, {OPTIMIZER_NAMES[demo.get('optimizer', 'adamw')]} "
             f"of {demo.get('learning_rate', 1e-3):g}"
             f"{', augmentation: ' + str(demo['augment']) if demo.get('augment') else ''}."
             f"{note}\n"),
             f"![Training curve of the {manifest['recipe']} demo]({_asset(manifest, 'curve.png')})\n"]
    if "test_accuracy" in m:
        lines.append(f"**Test accuracy: {m['test_accuracy']:.3f}** on {sizes[2]:,} held-out examples "
                     f"({m['params']:,} parameters, {m['macs'] / 1e6:.1f} M multiply-adds per example).\n")
    if "test_d_real" in m:
        lines.append(f"The discriminator's mean probability of \"real\": {m['test_d_real']:.2f} on {sizes[2]:,} "
                     f"held-out digits, {m['test_d_fake']:.2f} on as many of the generator's images. At the "
                     f"game's equilibrium both would be 0.5.\n")
    if "test_mean_iou" in m:
        lines.append(f"**Test mean IoU: {m['test_mean_iou']:.3f}** on {sizes[2]:,} held-out canvases, the mean of "
                     f"the digit's and the background's intersection over union ({m['params']:,} parameters, "
                     f"{m['macs'] / 1e6:.1f} M multiply-adds per example).\n")
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
            f"mean activation on held-out {'clips' if len(stage['grid']) == 1 else 'images'} whose gradient "
            f"ascent moved (of the "
            f"{stage['candidates']} that responded most). {_tiles(stage)}*\n")
    return "\n".join(sections)


def _tiles(stage):
    field, patch, centre = stage["receptive_field"], stage["patch"], stage.get("ascent_position")
    one_d = len(stage["grid"]) == 1  # a waveform model: fields in samples, patches are excerpts
    size, piece, pieces = ("sample", "excerpt", "excerpts") if one_d else ("px", "patch", "patches")
    ascent = "the input that excites the unit, by regularized gradient ascent"
    if centre:  # the ascent drove one unit, at the map's centre
        where = f"step {centre[0]}" if one_d else f"({', '.join(str(p) for p in centre)})"
        ascent = (f"the {piece} of input that excites the unit at the map's centre, {where}, by regularized "
                  f"gradient ascent, cut to its {patch}-{size} receptive field like the examples")
    if field is None:  # a transposed convolution before the layer: no input patch is its field
        return f"Each tile is {ascent} (no dataset examples: a transposed convolution precedes this layer)."
    if patch < field:
        examples = f"the held-out inputs that excite it most (its {field}-{size} receptive field covers them whole)"
    else:
        examples = f"the held-out {pieces} under its {field}-{size} receptive field that excite it most"
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


def representations(manifest):
    m = manifest["metrics"]
    n_train, n_test = m["representation_images"]
    layer, probes = m["representation_layer"], m["probes"]
    first, last = probes[0], probes[-1]
    best = max(probes, key=lambda probe: probe["accuracy"])
    return "\n".join([
        "## What the layers encode\n",
        (f"Krizhevsky et al. (2012) compare images by the features of the last hidden layer, the one the "
         f"classifier reads; here that is `{layer}`, {m['representation_dims']} numbers per image (averaged "
         f"over positions where it is a map).\n"),
        (f"![t-SNE of the last hidden layer]({_asset(manifest, 'tsne.png')}){_cols(1)}\n\n"
         f"*{n_test:,} held-out images, placed by t-SNE (van der Maaten and Hinton 2008) from their `{layer}` "
         f"features and coloured by their digit.*\n"),
        (f"![Nearest training images]({_asset(manifest, 'neighbours.png')}){_cols(4)}\n\n"
         f"*Top row: held-out images. Below each, its {m['neighbours']} nearest among {n_train:,} training images "
         f"by the cosine distance of their `{layer}` features, nearest first, titled with their digit. Over all "
         f"{n_test:,} held-out images, {_percent(m['neighbour_agreement'])} of these neighbours show the same "
         f"digit.*\n"),
        (f"![Linear-probe accuracy per stage]({_asset(manifest, 'probes.png')}){_cols(1)}\n\n"
         f"*Linear probes (Alain and Bengio 2016): a logistic regression on each stage's features, averaged "
         f"over positions, fitted on {n_train:,} training images and scored on the {n_test:,} held-out ones. "
         f"Chance, always answering the most common digit, is {m['probe_chance']:.2f}.*\n"),
        (f"The digit can be read linearly from `{first['layer']}` with accuracy {first['accuracy']:.2f} and "
         f"from `{last['layer']}` with {last['accuracy']:.2f}"
         + (f"; the best stage is `{best['layer']}` ({best['accuracy']:.2f})" if best is not last else "")
         + f". The trained classifier reaches {m['test_accuracy']:.3f}.\n"),
    ])


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
    return (f"---\n\n<small>Rendered{mode} by `cookbook render` on {where(manifest)}, Keras backend "
            f"`{manifest['backend']}`, in {manifest['seconds']:.0f} s. Versions: {versions}.</small>\n")


def generative(manifest):
    m = manifest["metrics"]
    parts = [
        (f"![Held-out digits and their reconstructions]({_asset(manifest, 'vae_reconstructions.png')}){_cols(4)}\n\n"
         f"*Held-out digits and the decoder's pixel probabilities for the mean code μ of each "
         f"({m['test_psnr']:.1f} dB PSNR over the test set).*\n"),
        (f"**Held-out ELBO: {m['test_elbo']:.1f} nats per image** ({m['test_elbo'] / m['pixels']:.3f} per pixel) "
         f"on {m['elbo_images']:,} test digits, one draw of z each. Treating the {m['pixels']:,} pixels as "
         f"independent, each with its mean over those same test digits, gives {m['pixel_baseline']:.1f} nats: "
         f"the VAE's bound is **{m['elbo_gain_nats']:.1f} nats** higher.\n"),
        (f"![Samples from the prior]({_asset(manifest, 'vae_samples.png')}){_cols(1)}\n\n"
         f"*64 codes drawn from the prior N(0, I) of the {m['latent_dim']}-D code space, decoded: the VAE "
         f"as a generator of digits.*\n"),
    ]
    if "latent_grid" in m:
        low, high, steps = m["latent_grid"]
        parts += [
            (f"![The code space, decoded]({_asset(manifest, 'vae_latent_grid.png')}){_cols(1)}\n\n"
             f"*The whole 2-D code space: a {steps}×{steps} grid of codes from {low} to {high} on each axis "
             f"(the 5 % to 95 % quantiles of N(0, 1)), decoded. Neighbouring codes decode to neighbouring "
             f"shapes.*\n"),
            (f"![Codes of held-out digits]({_asset(manifest, 'vae_latent_codes.png')}){_cols(1)}\n\n"
             f"*The mean code μ of each of the {m['elbo_images']:,} held-out digits, coloured by its label, "
             f"which the VAE never saw: the digits sort themselves into regions.*\n"),
        ]
    return "\n".join(parts)


def segmentation(manifest):
    m = manifest["metrics"]
    # the other builders in the recipe's order, then the demo's
    rows = [(f"`{v['builder']}`", v["test_mean_iou"], v["params"], v["train_seconds"]) for v in m["variants"]]
    rows.append((f"`{manifest['demo']['call'].split('(')[0]}` (the demo)", m["test_mean_iou"], m["params"],
                 m["train_seconds"]))
    table = "\n".join(f"| {name} | {iou:.3f} | {params:,} | {seconds:.0f} s |" for name, iou, params, seconds in rows)
    return (f"![Held-out canvases, masks and predictions]({_asset(manifest, 'segmentation.png')}){_cols(4)}\n\n"
            f"*Held-out canvases, the digit's mask, and the probability the demo build gives each pixel of "
            f"belonging to it. The fragments of other digits around it are background.*\n\n"
            f"Each variant trained with the demo's kwargs and settings, on {where(manifest)}; mean IoU "
            f"(of the digit and the background classes) on {manifest['demo']['sizes'][2]:,} held-out canvases:\n\n"
            f"| variant | mean IoU | parameters | training |\n| --- | --- | --- | --- |\n{table}\n")


def score_map(manifest):
    s = manifest["metrics"]["score_map"]
    grid = f"{s['grid'][0]}×{s['grid'][1]}"
    corners = ", ".join(f"{p} (true {t})" for p, t in zip(s["corner_predictions"], s["labels"]))
    return (f"![A classifier's score map]({_asset(manifest, 'score_map.png')}){_cols(1)}\n\n"
            f"*The {s['classifier']} demo (test accuracy {s['classifier_accuracy']:.3f}), trained on "
            f"{s['window']} px canvases and made fully convolutional with `cookbook.fcn.fully_convolutional`, "
            f"run once over a {s['canvas']} px canvas made of four held-out canvases. Each number is its "
            f"prediction for the {s['window']} px window centred there, windows {s['stride']} px apart "
            f"({grid} map); bold green where the probability is over 0.9. The four corner windows are the four "
            f"canvases exactly; there it says {corners}.*\n")


def adversarial(manifest):
    m = manifest["metrics"]
    rows = ", ".join(str(e) for e in m["epoch_rows"])
    counts = ", ".join(f"{label}: {count}" for label, count in enumerate(m["class_counts"]))
    bits = math.log2(len(m["class_counts"]))
    return "\n".join([
        (f"![The generator's images of fixed codes, epoch by epoch]({_asset(manifest, 'gan_epochs.png')}){_cols(1)}\n\n"
         f"*The same {m['epoch_columns']} codes through the generator after epochs {rows} (one row each, top to "
         f"bottom).*\n"),
        (f"![64 samples]({_asset(manifest, 'gan_samples.png')}){_cols(1)}\n\n"
         f"*64 samples from the trained generator, codes drawn afresh from N(0, I).*\n"),
        (f"**Judged by a classifier.** `{m['judge']}` from the [Xception recipe](xception.md), trained for "
         f"{m['judge_epochs']} epochs on the same real digits, reaches {m['judge_accuracy']:.3f} test accuracy. "
         f"It classifies **{_percent(m['confident_share'])}** of {m['gan_samples']:,} samples with a probability "
         f"of 0.9 or more (the held-out real digits: {_percent(m['real_confident_share'])}). Those confident "
         f"samples spread over the classes with an entropy of **{m['class_entropy_bits']:.2f} bits** (the real "
         f"digits: {m['real_class_entropy_bits']:.2f}; every class equally often: {bits:.2f}; one class only, "
         f"mode collapse: 0). Per class: {counts}.\n"),
        (f"![The samples the classifier is surest of, per class]({_asset(manifest, 'gan_by_class.png')}){_cols(1)}\n\n"
         f"*Per class (rows 0 to 9), the samples the classifier is surest of; a black tile where fewer than "
         f"8 samples were given that class.*\n"),
    ])


TASK_VIEWS = {"gradcam": gradcam, "evidence": evidence, "representations": representations,
              "reconstructions": reconstructions, "audio": audio, "generative": generative,
              "segmentation": segmentation, "score_map": score_map, "adversarial": adversarial}


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
