"""What the render draws of a trained demo: every view writes its figures and returns
``(files, facts)``. The facts go into the manifest; the page text is made from the
manifest alone (``cookbook.render.pages``), so a page never says what was not measured.
"""

from __future__ import annotations

import inspect
import logging

import numpy as np

from cookbook import io
from cookbook.render import figures

log = logging.getLogger("mkdocs.plugins.cookbook")

MIN_GRID = 6  # Grad-CAM comes from the deepest stage whose map is at least 6x6


# --- summary and cost -------------------------------------------------------------------------


def summary(recipe, folder, demo_model):
    """summary.md: cost per block and model.summary() of the default and demo builds."""
    import keras

    from cookbook import cost

    parts, facts = [], {}
    parts.append("The receptive field is the span of input pixels that one unit of a block's output sees "
                 "(`cookbook.cost.receptive_field`); deep in a network it can exceed the image, and the part "
                 "outside falls on the padding.\n")
    default = recipe.builder(recipe.default_builder)()
    # A fresh build: the trained model's summary would add its optimizer's state to the total.
    builds = [("Default build", recipe.default_builder, {}, default),
              ("Demo build", recipe.demo["builder"], dict(recipe.demo["kwargs"]), recipe.build_demo())]
    for title, builder, kwargs, model in builds:
        twin = _twin_of_build(recipe, builder, kwargs)
        lines = _summary_lines(model)
        call = f"{builder}({', '.join(f'{key}={value!r}' for key, value in kwargs.items())})"
        parts.append(f"### {title}: `{call}`\n")
        parts.append(f"**{model.count_params():,} parameters**"
                     + (f", the same model as `keras.applications.{twin}`." if twin else ".") + "\n")
        parts.append(cost.format_cost(model, by="block", markdown=True).strip() + "\n")
        parts.append(f'??? note "model.summary() of `{builder}`"\n')
        parts.append("    ```text")
        parts.extend("    " + line.rstrip() for line in "\n".join(lines).splitlines())
        parts.append("    ```\n")
    facts["params"] = int(demo_model.count_params())
    facts["macs"] = int(sum(layer.macs for layer in cost.layer_costs(demo_model)))
    facts["default_params"] = int(default.count_params())
    del default
    keras.backend.clear_session(free_memory=False)
    return [io.write_text(folder / "summary.md", "\n".join(parts) + "\n")], facts


def _twin_of_build(recipe, builder, kwargs):
    """The keras.applications twin of this build, or None where a knob has no twin
    (a width or a stem of ours): the build is then not keras.applications' model."""
    import inspect

    import keras

    twin = recipe.twin(builder)
    if twin is None:
        return None
    accepted = inspect.signature(getattr(keras.applications, twin)).parameters
    return twin if set(kwargs) <= set(accepted) else None


def _summary_lines(model):
    lines = []
    model.summary(line_length=110, print_fn=lambda line, line_break=False: lines.append(line))
    return lines


# --- diagram ------------------------------------------------------------------------------------


def diagram(recipe, folder, model):
    """diagram.svg: one node per block; graph.png: the full layer graph, behind a link."""
    import keras

    from cookbook.render import diagram as block_diagram

    files, facts = [], {}
    try:
        block_diagram.write_block_diagram(model, folder / "diagram.svg")
        files.append(folder / "diagram.svg")
        facts["diagram_nodes"] = len(block_diagram.block_graph(model)[0])
    except RuntimeError as error:  # no graphviz: the page shows the block table instead
        log.warning(f"{recipe.name}: no block diagram ({error})")
    try:
        with io.atomic_path(folder / "graph.png") as tmp:
            keras.utils.plot_model(model, to_file=str(tmp), show_shapes=True, show_layer_names=True, dpi=60,
                                   splines="spline")  # 'ortho' crashes graphviz on large graphs
        files.append(folder / "graph.png")
    except Exception as error:  # noqa: BLE001 - the full graph is optional
        log.warning(f"{recipe.name}: no layer graph ({str(error).splitlines()[0][:120]})")
    return files, facts


# --- filters ------------------------------------------------------------------------------------


def filters(recipe, folder, model, images, settings):
    """Per stage: the units that respond most, their ascent images, and their dataset examples."""
    from cookbook import visualize

    files, stages = [], []
    for stage in recipe.feature_stages(model):
        layer = model.get_layer(stage)
        shape = tuple(layer.output.shape[1:])
        units_ranked, means = visualize.rank_units(model, stage, images[: settings["rank_images"]])
        candidates = [int(u) for u, m in zip(units_ranked, means) if m > 0][: 2 * settings["filters"]]
        if not candidates:
            stages.append({"stage": stage, "channels": int(shape[-1]), "grid": [int(s) for s in shape[:-1]],
                           "units": [], "candidates": 0})
            continue
        field, centre = _small_field(model, stage, shape, images.shape[1:-1])
        pictures, moved = _ascent(model, stage, candidates, settings, _border(shape), images, field, centre)
        keep = moved[: settings["filters"]]
        units = [candidates[i] for i in keep]
        if not units:  # no ascent moved its unit: there is nothing worth showing
            stages.append({"stage": stage, "channels": int(shape[-1]), "grid": [int(s) for s in shape[:-1]],
                           "units": [], "candidates": len(candidates)})
            continue
        try:
            examples = visualize.top_activating(model, stage, images[: settings["rank_images"]], units=units,
                                                k=settings["examples"])
        except ValueError:  # no receptive field to cut a patch with (a transposed convolution before it)
            examples = None
        png = folder / f"filters_{stage}.png"
        if centre is not None:  # show the ascent at the scale of the examples: its unit's field
            size = [min(r, n) for r, n in zip(field.size, images.shape[1:-1])]
            pictures = [visualize.field_patch(picture, field, centre, size) for picture in pictures]
        _filter_figure([pictures[i] for i in keep], units, examples, png, one_d=len(shape) == 2)
        files.append(png)
        mean_of = dict(zip((int(u) for u in units_ranked), (float(m) for m in means)))
        stages.append({"stage": stage, "channels": int(shape[-1]), "grid": [int(s) for s in shape[:-1]],
                       "units": units, "candidates": len(candidates),
                       "mean_activation": [round(mean_of[u], 4) for u in units],
                       "ascent_position": list(centre) if centre is not None else None,
                       "receptive_field": int(examples.receptive_field.size[0]) if examples else None,
                       "patch": int(examples.patches.shape[2]) if examples else None})
    return files, {"filters": stages}


def _small_field(model, stage, shape, input_size):
    """(receptive field, the map's centre position) when a unit of ``stage`` sees at most a
    quarter of the input along each axis, else (field or None, None)."""
    from cookbook import cost

    try:
        field = cost.receptive_field(model, stage)
    except ValueError:  # a transposed convolution before it
        return None, None
    if any(4 * r > n for r, n in zip(field.size, input_size)):
        return field, None  # wide enough that the mean over the map shows a texture, not edges
    return field, tuple(int(n) // 2 for n in shape[:-1])


def _ascent(model, stage, candidates, settings, border, images, field=None, centre=None):
    """Regularized ascent from a gray start; units dead at gray (ReLU without BatchNorm) get a
    second try from a start as dark as the held-out images on average. A unit with a small
    field maximizes its activation at the map's ``centre`` (a mean over the map would tile the
    input with a few pixels' edge, noise between), with the random shifts kept small against
    its field (none for a signal). Returns (images, moved)."""
    from cookbook import visualize

    mean = float(np.mean(images))
    # A shift of s samples turns a tone of period p by 2*pi*s/p: random shifts would average
    # a waveform's tones away and leave drift, so a signal at one position gets none.
    is_image = images.ndim == 4
    jitter = max(1, min(field.size) // 8) if is_image and centre is not None else 0
    objective = {} if centre is None else {"position": centre, "jitter": jitter}
    # Images: the sigmoid's midpoint starts the ascent. Signals: (-1, 1) at a fixed loudness.
    ranges = ((0.0, 1.0), (2 * mean - 1.0, 1.0)) if is_image else ((-1.0, 1.0),)
    for value_range in ranges:
        pictures, final, start = visualize.filter_images(model, stage, filters=candidates, border=border,
                                                         steps=settings["filter_steps"], value_range=value_range,
                                                         return_start=True, **objective)
        moved = [i for i in range(len(candidates)) if final[i] > start[i] + 0.05 * abs(start[i]) and final[i] > 0]
        if moved:
            break
    return pictures, moved


def _border(shape):
    if len(shape) == 2:
        return min(2, (int(shape[0]) - 1) // 2)
    smallest = min(int(size) for size in shape[:2])
    return min(2, (smallest - 1) // 2)  # keras-io leaves out 2 pixels; small late maps allow less


def _filter_figure(pictures, units, examples, path, one_d):
    if examples is None:  # ascent images only: one row of them
        rows, titles = [list(pictures)], [[f"unit {unit}: ascent" for unit in units]]
        return (figures.wave_table if one_d else figures.tile_table)(rows, path, titles=titles)
    rows, titles = [], []
    for row, unit in enumerate(units):
        patches = list(examples.patches[row])
        rows.append([pictures[row]] + patches)
        titles.append([f"unit {unit}: ascent"] + [f"example {k + 1}" for k in range(len(patches))])
    if one_d:
        figures.wave_table(rows, path, titles)
    else:
        figures.tile_table(rows, path, titles=titles)


# --- classification: Grad-CAM at two depths, and the pointing game ------------------------------


def gradcam_layers(recipe, model):
    """(the deepest stage whose map is at least 6x6, the last layer with a map larger than 1x1)."""
    spatial_rank = len(model.inputs[0].shape)
    maps = [layer for layer in model.layers if len(getattr(layer.output, "shape", ())) == spatial_rank]
    # A 1x1 map after global pooling (MobileNet's conv_preds) has no place left to point at.
    last = [layer.name for layer in maps if any(d != 1 for d in layer.output.shape[1:-1])][-1]
    chosen = recipe.demo.get("gradcam_layer")
    if chosen is None:
        spatial = [s for s in recipe.feature_stages(model) if len(model.get_layer(s).output.shape) == 4
                   and min(model.get_layer(s).output.shape[1:3]) >= MIN_GRID]
        chosen = spatial[-1] if spatial else last
    return chosen, last


def _grid(model, name):
    return [int(size) for size in model.get_layer(name).output.shape[1:3]]


def gradcam(recipe, folder, model, test, settings):
    """gradcam.png (two depths side by side), gradcam_classes.png (two classes, one image)."""
    from cookbook import visualize

    layer, last = gradcam_layers(recipe, model)
    m = min(settings["pointing_images"], len(test))
    x, boxes, labels = test.x[:m], test.boxes[:m], test.y[:m]
    maps, predicted = visualize.grad_cam(model, x, layer=layer, return_classes=True)
    last_maps = visualize.grad_cam(model, x, layer=last, class_index=predicted)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / float(x.shape[1] * x.shape[2])
    facts = {
        "gradcam_layer": layer,
        "gradcam_grid": _grid(model, layer),
        "pointing_game": float(visualize.pointing_game(maps, boxes, labels=labels)),
        # A map that points at a random pixel hits the box with probability box area / image area.
        "pointing_game_random": float(np.mean(area)),
        "last_layer": last,
        "last_grid": _grid(model, last),
        "pointing_game_last": float(visualize.pointing_game(last_maps, boxes, labels=labels)),
        "pointing_images": int(m),
    }
    n = min(settings["gradcam_images"], m)
    rows = [[x[i] for i in range(n)],
            [visualize.overlay(x[i], maps[i]) for i in range(n)],
            [visualize.overlay(x[i], last_maps[i]) for i in range(n)]]
    titles = [[f"digit {int(labels[i])}, predicted {int(predicted[i])}" for i in range(n)], [""] * n, [""] * n]
    box_rows = [[tuple(boxes[i]) for i in range(n)]] * 3
    grid_a, grid_b = facts["gradcam_grid"], facts["last_grid"]
    labels_rows = ["input", f"{layer} ({grid_a[0]}×{grid_a[1]})", f"{last} ({grid_b[0]}×{grid_b[1]})"]
    figures.tile_table(rows, folder / "gradcam.png", row_labels=labels_rows, titles=titles, boxes=box_rows)
    facts["gradcam_examples"] = [{"label": int(labels[i]), "predicted": int(predicted[i])} for i in range(n)]
    facts["gradcam_classes"] = _class_contrast(model, layer, x, labels, predicted, folder / "gradcam_classes.png")
    return [folder / "gradcam.png", folder / "gradcam_classes.png"], facts


def _class_contrast(model, layer, x, labels, predicted, path):
    """On one correctly classified image: the map for the predicted class and for the runner-up."""
    from cookbook import visualize

    i = int(np.flatnonzero(labels == predicted)[0]) if np.any(labels == predicted) else 0
    probabilities = np.asarray(model.predict(x[i : i + 1], verbose=0))
    probabilities = probabilities[0] if probabilities.ndim == 2 else probabilities[0][0]
    first, second = [int(c) for c in np.argsort(probabilities)[::-1][:2]]
    maps = visualize.grad_cam(model, x[[i, i]], layer=layer, class_index=[first, second])
    rows = [[x[i], visualize.overlay(x[i], maps[0]), visualize.overlay(x[i], maps[1])]]
    titles = [["input", f"class {first} (predicted)", f"class {second} (runner-up)"]]
    figures.tile_table(rows, path, titles=titles)
    return {"image": i, "predicted": first, "other": second}


def has_patch_logits(recipe) -> bool:
    builder = recipe.builder(recipe.demo["builder"])
    try:
        return "patch_logits" in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False


def evidence(recipe, folder, model, test, settings):
    """BagNet: the classifier applied at every location: per-patch evidence for the true class."""
    patch_model = recipe.builder(recipe.demo["builder"])(**recipe.demo["kwargs"], patch_logits=True)
    patch_model.set_weights(model.get_weights())
    n = min(settings["gradcam_images"], len(test))
    x = test.x[:n]
    logits = np.asarray(patch_model.predict(x, verbose=0))  # (n, rows, cols, classes)
    evidence_maps = np.stack([logits[i, :, :, int(test.y[i])] for i in range(n)])
    limit = float(np.abs(evidence_maps).max()) or 1.0
    import matplotlib

    colored = matplotlib.colormaps["RdBu_r"]((evidence_maps / limit + 1) / 2)[..., :3]
    rows = [[x[i] for i in range(n)], [colored[i] for i in range(n)]]
    titles = [[f"digit {int(test.y[i])}" for i in range(n)], [""] * n]
    figures.tile_table(rows, folder / "evidence.png", row_labels=["input", "evidence"], titles=titles)
    return [folder / "evidence.png"], {"evidence_grid": [int(s) for s in evidence_maps.shape[1:3]]}


# --- classification: what the layers encode ----------------------------------------------------

# (training images for the probes and the neighbour gallery, held-out images), full and quick
REPRESENTATION_IMAGES = {False: (2000, 1000), True: (256, 128)}
NEIGHBOURS, QUERIES = 4, 4


def _producers(model):
    """{id of a layer's output tensor: the layer}, to walk a functional model backwards."""
    return {id(layer.output): layer for layer in model.layers}


def hidden_layer(model):
    """The last hidden layer: the one whose output the classifier reads (through any Dropout or
    Reshape). Krizhevsky et al. (2012) compare images by its features."""
    import keras

    producer = _producers(model)
    layer = producer[id(model.outputs[0])]
    while not layer.weights:  # the softmax, or the pooling and reshape after a 1x1-conv classifier
        layer = producer[id(layer.input)]
    layer = producer[id(layer.input)]
    while isinstance(layer, (keras.layers.Dropout, keras.layers.Reshape)):
        layer = producer[id(layer.input)]
    return layer


def representations(recipe, folder, model, test, settings):
    """tsne.png, neighbours.png, probes.png: the last hidden layer's features of held-out images
    (t-SNE, and their nearest training images), and a linear probe on every stage."""
    import keras
    from threadpoolctl import threadpool_limits

    from cookbook import visualize

    n_train, n_test = REPRESENTATION_IMAGES[settings["quick"]]
    train = settings["trained"].data.train
    x_train, y_train = train.x[:n_train], np.asarray(train.y[:n_train])
    x_test, y_test = test.x[:n_test], np.asarray(test.y[:n_test])
    hidden = hidden_layer(model)
    gallery, queries = (visualize.features(model, hidden.name, x) for x in (x_train, x_test))
    nearest, _ = visualize.nearest_neighbours(queries, gallery, k=NEIGHBOURS)
    with threadpool_limits(1, "openmp"):  # t-SNE's OpenMP threads spin-wait on a busy CPU
        points = visualize.project(queries, "tsne", seed=0)
    figures.scatter_by_class(points, y_test, folder / "tsne.png", "t-SNE 1", "t-SNE 2")

    rows = [[x_test[q] for q in range(QUERIES)]]
    rows += [[x_train[nearest[q, k]] for q in range(QUERIES)] for k in range(NEIGHBOURS)]
    titles = [[f"digit {int(y_test[q])}" for q in range(QUERIES)]]
    titles += [[str(int(y_train[nearest[q, k]])) for q in range(QUERIES)] for k in range(NEIGHBOURS)]
    figures.tile_table(rows, folder / "neighbours.png", titles=titles,
                       row_labels=["held-out"] + [f"nearest {k + 1}" for k in range(NEIGHBOURS)])

    stages = list(recipe.feature_stages(model))
    # A global average pool of the last stage is what the probe of that stage reads already.
    pooled_last_stage = (isinstance(hidden, keras.layers.GlobalAveragePooling2D)
                         and _producers(model)[id(hidden.input)].name == stages[-1])
    layers = stages if hidden.name in stages or pooled_last_stage else stages + [hidden.name]
    probes = visualize.linear_probes(model, layers, (x_train, y_train), (x_test, y_test))
    figures.probe_curve(probes.layers, probes.accuracies, probes.train_accuracies, probes.chance,
                        folder / "probes.png")
    facts = {
        "representation_layer": hidden.name,
        "representation_dims": int(queries.shape[1]),
        "representation_images": [int(len(x_train)), int(len(x_test))],
        "neighbours": NEIGHBOURS,
        "neighbour_agreement": float(np.mean(y_train[nearest] == y_test[:, None])),
        "probes": [{"layer": name, "accuracy": float(test_score), "train_accuracy": float(train_score)}
                   for name, test_score, train_score in zip(probes.layers, probes.accuracies,
                                                            probes.train_accuracies)],
        "probe_chance": float(probes.chance),
    }
    return [folder / "tsne.png", folder / "neighbours.png", folder / "probes.png"], facts


# --- autoencoder and audio ----------------------------------------------------------------------


def reconstructions(recipe, folder, model, test, settings):
    n = min(settings["gradcam_images"], len(test))
    x, target = test.x[:n], test.y[:n]
    output = np.asarray(model.predict(x, verbose=0))
    rows = [list(x), list(target), list(output)]
    figures.tile_table(rows, folder / "reconstructions.png", row_labels=["noisy input", "clean target", "output"])
    return [folder / "reconstructions.png"], {"reconstruction_images": int(n)}


def audio(recipe, folder, model, test, settings):
    """Waveform, spectrogram and saliency over time of a few held-out clips."""
    from cookbook import visualize

    n = min(3, len(test))
    x = test.x[:n]
    predicted = np.argmax(np.asarray(model.predict(x, verbose=0)), axis=-1)
    saliency = np.asarray(visualize.saliency(model, x, class_index=predicted)).reshape(n, -1)
    plt = figures.pyplot()
    figure, axes = plt.subplots(3, n, figsize=(3.2 * n, 5.4), squeeze=False)
    for i in range(n):
        wave = x[i].reshape(-1)
        axes[0, i].plot(wave, linewidth=0.4)
        axes[0, i].set_title(f"class {int(test.y[i])}, predicted {int(predicted[i])}", fontsize=9)
        axes[1, i].specgram(wave, NFFT=256, noverlap=192, Fs=1.0, cmap="magma")
        window = max(1, len(wave) // 200)
        axes[2, i].plot(np.convolve(saliency[i], np.ones(window) / window, mode="same"), color="crimson",
                        linewidth=0.8)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    for r, label in enumerate(("waveform", "spectrogram", "saliency")):
        axes[r, 0].set_ylabel(label, fontsize=9)
    figure.tight_layout()
    figures.save(figure, folder / "audio.png")
    examples = [{"label": int(test.y[i]), "predicted": int(predicted[i])} for i in range(n)]
    return [folder / "audio.png"], {"audio_examples": examples}


# --- generative models ----------------------------------------------------------------------------


def generative(recipe, folder, model, test, settings):
    """A VAE: held-out reconstructions, draws from the prior, the 2-D code space, and the ELBO
    against the best model that treats the pixels as independent."""
    from statistics import NormalDist

    module, x, labels = recipe.module, test.x, test.labels
    elbo = module.elbo(model, x)
    # Each pixel a Bernoulli with its mean over the test images themselves: generous to the baseline.
    p = np.clip(x.mean(axis=0, dtype="float64"), 1e-7, 1 - 1e-7)
    baseline = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    n = figures.MAX_COLUMNS
    output = np.asarray(model.predict(x[:n], verbose=0))
    figures.tile_table([list(x[:n]), list(output)], folder / "vae_reconstructions.png",
                       row_labels=["held-out input", "reconstruction"])
    decode = module.decoder(model)
    latent_dim = int(decode.inputs[0].shape[-1])
    draws = np.random.default_rng(0).normal(size=(64, latent_dim)).astype("float32")
    figures.mosaic(decode.predict(draws, verbose=0), folder / "vae_samples.png", columns=8)
    files = [folder / "vae_reconstructions.png", folder / "vae_samples.png"]
    facts = {"test_elbo": float(elbo.mean()), "pixel_baseline": float(baseline.mean()),
             "elbo_gain_nats": float(elbo.mean() - baseline.mean()), "pixels": int(np.prod(x.shape[1:])),
             "latent_dim": latent_dim, "elbo_images": len(x)}
    if latent_dim == 2:  # the whole code space fits on a page: Kingma and Welling's figure 4
        steps = 12
        quantiles = [NormalDist().inv_cdf(q) for q in np.linspace(0.05, 0.95, steps)]
        grid = np.array([(a, b) for b in quantiles[::-1] for a in quantiles], dtype="float32")
        figures.mosaic(decode.predict(grid, verbose=0), folder / "vae_latent_grid.png", columns=steps)
        means = np.asarray(module.encoder(model).predict(x, verbose=0)[0])
        figures.scatter_by_class(means, labels, folder / "vae_latent_codes.png",
                                 xlabel="z[0]", ylabel="z[1]")
        files += [folder / "vae_latent_grid.png", folder / "vae_latent_codes.png"]
        facts["latent_grid"] = [round(quantiles[0], 2), round(quantiles[-1], 2), steps]
    return files, facts


# --- adversarial -----------------------------------------------------------------------------------

# The judge of a GAN's samples: one of our classifiers, trained on the real digits the GAN saw.
SAMPLE_JUDGE = {"recipe": "xception", "builder": "mini_xception", "kwargs": {"filters": (32, 64, 128)},
                "epochs": 10}
SAMPLE_IMAGES = 1000
EPOCH_ROWS = 10


def adversarial(recipe, folder, model, test, settings):
    """A GAN: G's images of fixed codes after each epoch, fresh samples, and a classifier trained
    on the real digits judging 1,000 samples beside as many real held-out digits."""
    from cookbook import data as cdata
    from cookbook import gan, registry, train

    trained = settings["trained"]
    per_epoch = trained.samples
    epochs = sorted({round(e) for e in np.linspace(0, len(per_epoch) - 1, min(EPOCH_ROWS, len(per_epoch)))})
    columns = 12
    figures.mosaic([image for e in epochs for image in per_epoch[e, :columns]], folder / "gan_epochs.png",
                   columns=columns)
    codes = np.random.default_rng(2).normal(size=(SAMPLE_IMAGES, model.get_layer("gen_code").latent_dim))
    samples = (np.asarray(recipe.module.generator(model).predict(codes.astype("float32"), verbose=0)) + 1) / 2
    figures.mosaic(samples[:64], folder / "gan_samples.png", columns=8)

    judge = SAMPLE_JUDGE
    classifier = registry.get(judge["recipe"]).builder(judge["builder"])(
        input_shape=test.x.shape[1:], classes=trained.data.classes, **judge["kwargs"])
    data = trained.data
    splits = cdata.Splits(*(cdata.Split(split.x, split.labels) for split in data), classes=data.classes)
    train.fit(classifier, splits, epochs=2 if settings["quick"] else judge["epochs"], verbose=0, seed=0)
    accuracy = float(np.mean(np.argmax(classifier.predict(test.x, verbose=0), axis=-1) == test.labels))
    fake, real = gan.sample_quality(classifier, samples), gan.sample_quality(classifier, test.x)
    probabilities = np.asarray(classifier.predict(samples, verbose=0))
    rows = []  # per class, the samples the judge is surest of
    for label in range(data.classes):
        ranked = [i for i in np.argsort(-probabilities[:, label]) if probabilities[i].argmax() == label][:8]
        rows.append([samples[i] for i in ranked] + [np.zeros_like(samples[0])] * (8 - len(ranked)))
    figures.mosaic([image for row in rows for image in row], folder / "gan_by_class.png", columns=8)
    judge_call = f"{judge['builder']}({', '.join(f'{k}={v!r}' for k, v in judge['kwargs'].items())})"
    return ([folder / name for name in ("gan_epochs.png", "gan_samples.png", "gan_by_class.png")],
            {"confident_share": fake["confident_share"], "class_entropy_bits": fake["class_entropy_bits"],
             "class_counts": fake["class_counts"], "real_confident_share": real["confident_share"],
             "real_class_entropy_bits": real["class_entropy_bits"], "judge": judge_call,
             "judge_accuracy": accuracy, "judge_epochs": judge["epochs"], "gan_samples": len(samples),
             "epoch_rows": [e + 1 for e in epochs], "epoch_columns": columns})


# --- segmentation ---------------------------------------------------------------------------------


def segmentation(recipe, folder, model, test, settings):
    """Held-out canvases, the digit's true mask and the predicted one; then the recipe's other
    builders trained the same way, for their mean IoU beside the demo's."""
    from cookbook import train

    n = figures.MAX_COLUMNS
    predicted = np.asarray(model.predict(test.x[:n], verbose=0))
    figures.tile_table([list(test.x[:n]), list(test.y[:n]), list(predicted)], folder / "segmentation.png",
                       row_labels=["held-out input", "digit mask", "predicted"])
    variants = []
    for builder in recipe.builders:
        if builder == recipe.demo["builder"]:
            continue
        result = train.train_recipe(recipe.name, builder=builder, quick=settings["quick"], verbose=0,
                                    jit_compile=settings["jit_compile"])
        variants.append({"builder": builder, "test_mean_iou": result.metrics["test_mean_iou"],
                         "params": result.metrics["params"], "train_seconds": result.metrics["train_seconds"]})
    return [folder / "segmentation.png"], {"variants": variants, "segmentation_images": n}


SCORE_MAP_CLASSIFIER = "alexnet"  # a Flatten-Dense head, and the fastest such demo to train
DEMOS_SHOWN = {"score_map": SCORE_MAP_CLASSIFIER}  # a view that shows another recipe's demo
SHARED_DEMOS = tuple(DEMOS_SHOWN.values())
_shared = {}  # (name, quick, jit_compile, demo) -> TrainResult, for SHARED_DEMOS only


def trained_demo(name, quick, jit_compile=False):
    """Train recipe ``name``'s demo as the render does. A demo in SHARED_DEMOS is trained
    once per process, so that both pages that show it show the same model (its accuracy
    printed once, not two runs' slightly different figures) and its time is spent once."""
    from cookbook import registry, train

    key = (name, quick, jit_compile, repr(registry.get(name).demo))
    if key in _shared:
        return _shared[key]
    result = train.train_recipe(name, quick=quick, verbose=0, jit_compile=jit_compile)
    if name in SHARED_DEMOS:
        _shared[key] = result
    return result


def score_map(recipe, folder, model, test, settings):
    """A classifier trained on 64 px canvases, made fully convolutional (cookbook.fcn), over a
    128 px canvas of four held-out canvases: its class scores at every window position."""
    from cookbook import fcn

    classifier = trained_demo(SCORE_MAP_CLASSIFIER, settings["quick"], settings["jit_compile"])
    scores = fcn.fully_convolutional(classifier.model)
    size = test.x.shape[1]
    canvas = np.concatenate([np.concatenate([test.x[0], test.x[1]], axis=1),
                             np.concatenate([test.x[2], test.x[3]], axis=1)], axis=0)
    probabilities = np.asarray(scores.predict(canvas[None], verbose=0))[0]
    stride = size // (probabilities.shape[0] - 1)  # the first and last windows lie `size` px apart
    figures.score_map(canvas, probabilities, window=size, stride=stride, path=folder / "score_map.png")
    corners = [probabilities[0, 0], probabilities[0, -1], probabilities[-1, 0], probabilities[-1, -1]]
    return [folder / "score_map.png"], {
        "score_map": {"classifier": SCORE_MAP_CLASSIFIER, "classifier_accuracy": classifier.metrics["test_accuracy"],
                      "grid": [int(d) for d in probabilities.shape[:2]], "stride": int(stride), "window": int(size),
                      "canvas": int(2 * size), "labels": [int(v) for v in test.labels[:4]],
                      "corner_predictions": [int(np.argmax(p)) for p in corners]}}


VIEWS = {"gradcam": gradcam, "evidence": evidence, "representations": representations,
         "reconstructions": reconstructions, "audio": audio, "generative": generative,
         "segmentation": segmentation, "score_map": score_map, "adversarial": adversarial}
