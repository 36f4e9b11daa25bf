"""Built-in datasets that need no network, real datasets through tensorflow-datasets,
and the input pipeline with optional augmentation.

Conventions (the rest of the cookbook relies on them):

- images: float32 in [0, 1], shape (N, H, W, C), channels-last;
- audio: float32, shape (N, samples, 1);
- labels: int64, shape (N,);
- boxes: int32, shape (N, 4), (y0, x0, y1, x1) in pixels, y1/x1 exclusive;
- masks: bool, shape (N, H, W).

Every loader returns :class:`Splits` ``(train, val, test)`` of :class:`Split`
``(x, y, boxes=None, masks=None)``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools

import numpy as np

__all__ = [
    "AUGMENTATIONS",
    "REAL_DATASETS",
    "DatasetUnavailableError",
    "Split",
    "Splits",
    "augmentation_layers",
    "cluttered_digits",
    "load",
    "pipeline",
    "synthetic_audio",
]


# --- containers ------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    """One split: inputs ``x``, labels ``y`` and, where the data has them, boxes and masks.
    Where ``y`` holds another target (an image to rebuild), ``labels`` keeps the class labels."""

    x: np.ndarray
    y: np.ndarray
    boxes: np.ndarray | None = None
    masks: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"x and y must have the same length, got {len(self.x)} and {len(self.y)}")
        for name in ("boxes", "masks", "labels"):
            value = getattr(self, name)
            if value is not None and len(value) != len(self.x):
                raise ValueError(f"{name} must have one entry per example, got {len(value)} for {len(self.x)}")

    def __len__(self):
        return len(self.x)

    def take(self, n: int) -> Split:
        """The first ``n`` examples (all of them when ``n`` is larger)."""
        _check_int(n, "n", 1)
        pick = lambda a: None if a is None else a[:n]
        return Split(self.x[:n], self.y[:n], pick(self.boxes), pick(self.masks), pick(self.labels))


@dataclasses.dataclass
class Splits:
    """The three splits of a dataset, plus what it is: ``classes`` and ``name``."""

    train: Split
    val: Split
    test: Split
    classes: int | None = None
    name: str = ""

    def __iter__(self):
        return iter((self.train, self.val, self.test))


class DatasetUnavailableError(FileNotFoundError):
    """A tensorflow-datasets dataset that is not on disk and may not be downloaded."""


# --- argument checks ---------------------------------------------------------------------


def _check_int(value, name, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_float(value, name, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


# --- cluttered digits --------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _sklearn_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype("float32"), digits.target.astype("int64")


@functools.lru_cache(maxsize=512)
def _zoom_matrix(n, scale):
    """The (round(n * scale), n) matrix of bilinear interpolation weights along one axis."""
    out = max(1, round(n * scale))
    pos = np.clip((np.arange(out) + 0.5) / scale - 0.5, 0, n - 1)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = pos - low
    matrix = np.zeros((out, n), dtype="float32")
    matrix[np.arange(out), low] += 1 - frac
    matrix[np.arange(out), high] += frac
    return matrix


def _zoom(patch, scale):
    """Bilinear upscaling of a small 2D patch by ``scale`` (rounded to 1/20)."""
    scale = round(scale * 20) / 20
    h, w = patch.shape
    return _zoom_matrix(h, scale) @ patch @ _zoom_matrix(w, scale).T


def _source_pools(seed, fractions=(0.6, 0.2, 0.2)):
    """Split the 1,797 scikit-learn digits into disjoint train/val/test pools, per class."""
    _images, labels = _sklearn_digits()
    rng = np.random.default_rng([seed, 7])
    pools = [[], [], []]
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        a = int(len(idx) * fractions[0])
        b = a + int(len(idx) * fractions[1])
        for pool, part in zip(pools, (idx[:a], idx[a:b], idx[b:])):
            pool.extend(part.tolist())
    return [np.array(sorted(pool)) for pool in pools]


def _render_digits(n, pool, size, scale, distractors, noise, rgb, rng):
    images, labels = _sklearn_digits()
    channels = 3 if rgb else 1
    x = np.zeros((n, size, size, channels), dtype="float32")
    boxes = np.empty((n, 4), dtype="int32")
    masks = np.zeros((n, size, size), dtype=bool)
    # Balanced classes: cycle through the digits, then shuffle the order.
    y = rng.permutation(np.arange(n) % 10).astype("int64")
    by_class = [pool[labels[pool] == d] for d in range(10)]
    # Draw every random number up front (one call each): the loop below only places.
    k = max(distractors, 1)
    u = {
        "src": rng.random(n), "scale": rng.uniform(*scale, size=n), "gain": rng.uniform(0.6, 1.0, n),
        "pos": rng.random((n, 2)), "count": rng.integers(distractors // 2, distractors + 1, size=n),
        "other": rng.choice(pool, size=(n, k)), "fsize": rng.integers(3, 6, size=(n, k, 2)),
        "foff": rng.random((n, k, 2)), "fscale": rng.uniform(*scale, size=(n, k)),
        "fgain": rng.uniform(0.5, 1.0, size=(n, k)), "fpos": rng.random((n, k, 10, 2)),
        "color": rng.uniform(0.4, 1.0, size=(n, channels)), "fcolor": rng.uniform(0.3, 1.0, size=(n, k, channels)),
    }
    u = {key: value.tolist() for key, value in u.items()}  # Python scalars: a faster loop
    for i in range(n):
        cls = by_class[y[i]]
        glyph = _zoom(images[cls[int(u["src"][i] * len(cls))]], u["scale"][i]) * u["gain"][i]
        gh, gw = glyph.shape
        top, left = int(u["pos"][i][0] * (size - gh + 1)), int(u["pos"][i][1] * (size - gw + 1))
        canvas = x[i]

        # Distractors: fragments of other digits, kept off the digit's box.
        for j in range(u["count"][i] if distractors else 0):
            fh, fw = u["fsize"][i][j]
            fy, fx = int(u["foff"][i][j][0] * (9 - fh)), int(u["foff"][i][j][1] * (9 - fw))
            frag = _zoom(images[u["other"][i][j]][fy : fy + fh, fx : fx + fw], u["fscale"][i][j])
            ph, pw = frag.shape
            for uy, ux in u["fpos"][i][j]:
                py, px = int(uy * (size - ph + 1)), int(ux * (size - pw + 1))
                if py + ph <= top or py >= top + gh or px + pw <= left or px >= left + gw:
                    region = canvas[py : py + ph, px : px + pw]
                    gain = u["fgain"][i][j] * (np.array(u["fcolor"][i][j], "float32") if rgb else 1.0)
                    np.maximum(region, frag[..., None] * gain, out=region)
                    break

        region = canvas[top : top + gh, left : left + gw]
        color = np.array(u["color"][i], "float32") if rgb else 1.0
        np.maximum(region, glyph[..., None] * color, out=region)
        mask = glyph > 0.25
        masks[i, top : top + gh, left : left + gw] = mask
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        boxes[i] = (top + rows[0], left + cols[0], top + rows[-1] + 1, left + cols[-1] + 1)
    if noise:
        x += rng.normal(0.0, noise, size=x.shape).astype("float32")
    np.clip(x, 0.0, 1.0, out=x)
    return Split(x, y, boxes, masks)


def cluttered_digits(
    n_train=5000,
    n_val=1000,
    n_test=1000,
    *,
    size=64,
    scale=(2.5, 4.0),
    distractors=6,
    noise=0.1,
    rgb=False,
    seed=0,
) -> Splits:
    """The scikit-learn 8x8 digits, scaled up and placed at random on a cluttered canvas.

    Each digit is scaled by a random factor in ``scale`` (20 to 32 px by default),
    placed at a random position on a ``size`` x ``size`` canvas, among up to
    ``distractors`` fragments of other digits (kept off the digit's box) and
    Gaussian noise of standard deviation ``noise``. The train, val and test splits
    draw from disjoint thirds of the source digits, so test accuracy measures
    generalization to unseen handwriting. Deterministic for a ``seed``.

    Returns :class:`Splits` whose splits carry ``x`` (N, size, size, 1 or 3) float32
    in [0, 1], ``y`` int64 in 0..9, ``boxes`` (N, 4) int32 and ``masks`` (N, size, size) bool.
    """
    for value, name in ((n_train, "n_train"), (n_val, "n_val"), (n_test, "n_test")):
        _check_int(value, name, 1)
    _check_int(size, "size", 1)
    _check_int(distractors, "distractors", 0)
    _check_int(seed, "seed", 0)
    _check_float(noise, "noise", 0.0, 1.0)
    if not isinstance(rgb, bool):
        raise TypeError(f"rgb must be a bool, got {type(rgb).__name__}")
    if not isinstance(scale, (tuple, list)) or len(scale) != 2:
        raise ValueError(f"scale must be a (low, high) pair, got {scale!r}")
    for value in scale:
        _check_float(value, "scale", 0.5, None)
    if scale[0] > scale[1]:
        raise ValueError(f"scale must be (low, high) with low <= high, got {scale!r}")
    if size < int(np.ceil(8 * scale[1])):
        raise ValueError(f"size must be at least 8 * scale[1] = {int(np.ceil(8 * scale[1]))}, got {size}")
    return copy.deepcopy(_cluttered(n_train, n_val, n_test, size, tuple(scale), distractors, noise, rgb, seed))


@functools.lru_cache(maxsize=4)
def _cluttered(n_train, n_val, n_test, size, scale, distractors, noise, rgb, seed):
    pools = _source_pools(seed)
    splits = [
        _render_digits(n, pool, size, scale, distractors, noise, rgb, np.random.default_rng([seed, k]))
        for k, (n, pool) in enumerate(zip((n_train, n_val, n_test), pools))
    ]
    return Splits(*splits, classes=10, name="cluttered_digits")


# --- synthetic audio ---------------------------------------------------------------------

AUDIO_CLASSES = (
    "chirp_up",  # frequency sweeps up
    "chirp_down",  # the same sweep reversed in time: the same magnitude spectrum
    "am_tone",  # a tone whose amplitude is modulated at 3-8 Hz
    "fm_tone",  # a tone whose frequency wobbles at 3-8 Hz
    "bursts_slow",  # 2-3 tone bursts
    "bursts_fast",  # 6-8 tone bursts
    "step_up",  # low tone, then high tone
    "step_down",  # high tone, then low tone
)


def _tone(freq, t, sr):
    """A tone of (possibly time-varying) frequency ``freq`` Hz, by phase integration."""
    freq = np.broadcast_to(freq, t.shape)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr + 0.0)


def _audio_example(label, n, sr, rng):
    t = np.arange(n) / sr
    duration = n / sr
    # Carrier frequencies overlap between classes: only the structure tells them apart.
    f_lo, f_hi = 0.05 * sr, 0.3 * sr
    name = AUDIO_CLASSES[label]
    if name in ("chirp_up", "chirp_down"):
        a, b = np.sort(rng.uniform(f_lo, f_hi, size=2))
        b = max(b, a * 1.5)
        sweep = a + (b - a) * t / duration
        sig = _tone(sweep if name == "chirp_up" else sweep[::-1], t, sr)
    elif name == "am_tone":
        rate, depth = rng.uniform(3, 8), rng.uniform(0.6, 1.0)
        sig = (1 - depth * 0.5 * (1 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3)))) * _tone(
            rng.uniform(f_lo, f_hi), t, sr
        )
    elif name == "fm_tone":
        fc, rate = rng.uniform(f_lo * 1.2, f_hi * 0.8), rng.uniform(3, 8)
        dev = rng.uniform(0.05, 0.15) * fc
        sig = _tone(fc + dev * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3)), t, sr)
    elif name in ("bursts_slow", "bursts_fast"):
        count = rng.integers(2, 4) if name == "bursts_slow" else rng.integers(6, 9)
        period = duration / count
        on = ((t + rng.uniform(0, period)) % period) < period * rng.uniform(0.3, 0.5)
        sig = on * _tone(rng.uniform(f_lo, f_hi), t, sr)
    else:  # step_up / step_down
        a, b = np.sort(rng.uniform(f_lo, f_hi, size=2))
        b = max(b, a * 1.3)
        first, second = (a, b) if name == "step_up" else (b, a)
        cut = rng.uniform(0.35, 0.65) * duration
        sig = _tone(np.where(t < cut, first, second), t, sr)
    return sig


def _delay(signal, steps):
    """``signal`` shifted by ``steps`` samples (negative: earlier), with silence filling in.

    Not a circular roll: that would join a tone step's end to its start, so every
    "step_up" would also hold a high-to-low step and look like "step_down".
    """
    out = np.zeros_like(signal)
    if steps >= 0:
        out[steps:] = signal[: len(signal) - steps]
    else:
        out[:steps] = signal[-steps:]
    return out


def synthetic_audio(
    n_train=2000,
    n_val=400,
    n_test=400,
    *,
    sample_rate=8000,
    duration=1.0,
    noise=0.3,
    shift=0.2,
    seed=0,
) -> Splits:
    """Deterministic 1D signals in 8 classes told apart only by temporal or spectral structure.

    The classes are in ``AUDIO_CLASSES``: rising against falling chirps (the same
    magnitude spectrum, reversed in time), amplitude against frequency modulation,
    slow against fast tone bursts, and low-to-high against high-to-low tone steps.
    Carrier frequencies are drawn from the same range for every class. Each example
    gets a random gain (0.3 to 1), a random time shift of up to ``shift`` of its
    length (silence fills in), and white noise of standard deviation ``noise`` (relative to the
    unit-amplitude signal). ``sample_rate`` is 8000 or 16000 Hz.

    Returns :class:`Splits` with ``x`` float32 (N, samples, 1) and ``y`` int64 in 0..7.
    """
    for value, name in ((n_train, "n_train"), (n_val, "n_val"), (n_test, "n_test")):
        _check_int(value, name, 1)
    _check_int(seed, "seed", 0)
    if sample_rate not in (8000, 16000) or isinstance(sample_rate, bool):
        raise ValueError(f"sample_rate must be 8000 or 16000, got {sample_rate!r}")
    _check_float(duration, "duration", 0.05, 10.0)
    _check_float(noise, "noise", 0.0, 10.0)
    _check_float(shift, "shift", 0.0, 1.0)
    samples = round(sample_rate * duration)
    splits = []
    for k, n in enumerate((n_train, n_val, n_test)):
        rng = np.random.default_rng([seed, 100 + k])
        labels = rng.permutation(np.arange(n) % len(AUDIO_CLASSES))
        x = np.empty((n, samples, 1), dtype="float32")
        for i, label in enumerate(labels):
            sig = _audio_example(int(label), samples, sample_rate, rng)
            sig = _delay(sig, int(rng.integers(-int(shift * samples), int(shift * samples) + 1)))
            sig = rng.uniform(0.3, 1.0) * (sig + rng.normal(0.0, noise, size=samples))
            x[i, :, 0] = sig / max(1.0, np.abs(sig).max())
        splits.append(Split(x, labels.astype("int64")))
    return Splits(*splits, classes=len(AUDIO_CLASSES), name="synthetic_audio")


# --- real datasets through tensorflow-datasets ---------------------------------------------

REAL_DATASETS = {
    # name: (tfds splits for train/val/test (None: carve val from train), kind, default size)
    "cifar10": (("train", None, "test"), "image", None),
    "speech_commands": (("train", "validation", "test"), "audio", 16000),
    "oxford_iiit_pet": (("train", None, "test"), "segmentation", (128, 128)),
}


def _download_hint(name, data_dir):
    where = f", data_dir={data_dir!r}" if data_dir else ""
    return (
        f"dataset {name!r} is not prepared on this machine{' in ' + repr(data_dir) if data_dir else ''} "
        f"and download=False. Download it once with network access: "
        f"cookbook.data.load({name!r}, download=True{where}) or "
        f"python -c \"import tensorflow_datasets as tfds; tfds.builder({name!r}{where}).download_and_prepare()\""
    )


def _read_tfds(name, split, data_dir, download):
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare()
    try:
        return builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as error:  # tfds raises this when the data is not on disk
        raise DatasetUnavailableError(_download_hint(name, data_dir)) from error


def _to_numpy(ds, kind, size, limit):
    import tensorflow as tf

    if limit is not None:
        ds = ds.take(limit)

    def convert(ex):
        if kind == "audio":
            audio = tf.cast(ex["audio"], tf.float32) / 32768.0
            audio = audio[:size]
            audio = tf.pad(audio, [[0, size - tf.shape(audio)[0]]])
            return {"x": tf.reshape(audio, (size, 1)), "y": ex["label"]}
        image = tf.image.convert_image_dtype(ex["image"], tf.float32)
        out = {"y": ex["label"]}
        if size is not None:
            image = tf.image.resize(image, size, antialias=True)
        out["x"] = tf.clip_by_value(image, 0.0, 1.0)
        if kind == "segmentation":
            # The trimap: 1 pet, 2 background, 3 border. The mask is the pet with its border.
            trimap = ex["segmentation_mask"]
            if size is not None:
                trimap = tf.image.resize(trimap, size, method="nearest")
            out["masks"] = tf.not_equal(trimap[..., 0], 2)
        return out

    ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    parts = {"x": [], "y": [], "masks": []}
    for batch in ds.batch(256).as_numpy_iterator():
        for key, value in batch.items():
            parts[key].append(value)
    if not parts["x"]:
        raise ValueError("the dataset split is empty")
    x = np.concatenate(parts["x"]).astype("float32")
    y = np.concatenate(parts["y"]).astype("int64")
    masks = np.concatenate(parts["masks"]).astype(bool) if parts["masks"] else None
    return Split(x, y, masks=masks)


def load(name, *, image_size=None, limit=None, val_fraction=0.1, data_dir=None, download=False) -> Splits:
    """A real dataset from tensorflow-datasets, mapped to the cookbook's conventions.

    - ``"cifar10"``: x (N, 32, 32, 3), y in 0..9; val is the last ``val_fraction`` of train.
    - ``"speech_commands"``: x (N, 16000, 1), 1 s at 16 kHz, cropped or zero-padded;
      y in 0..11; the dataset's own validation split.
    - ``"oxford_iiit_pet"``: x (N, 128, 128, 3) by default, y the breed in 0..36, and
      ``masks`` the pet (its trimap's pet and border pixels); val carved from train.

    ``image_size`` (height, width) resizes images (the pets vary in size, so they are
    always resized). ``limit`` caps each split. Without the data on disk and with
    ``download=False``, raises :class:`DatasetUnavailableError` naming the dataset
    and the command that downloads it.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in REAL_DATASETS:
        raise ValueError(f"name must be one of {sorted(REAL_DATASETS)}, got {name!r}")
    if limit is not None:
        _check_int(limit, "limit", 1)
    _check_float(val_fraction, "val_fraction", 0.01, 0.9)
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    tfds_splits, kind, default_size = REAL_DATASETS[name]
    if image_size is not None:
        if kind == "audio":
            raise ValueError(f"image_size does not apply to the audio dataset {name!r}")
        if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
            raise ValueError(f"image_size must be (height, width), got {image_size!r}")
        for value in image_size:
            _check_int(value, "image_size", 1)
    size = tuple(image_size) if image_size is not None else default_size

    train_name, val_name, test_name = tfds_splits
    if val_name is None:
        # The tail of train, by percent: tfds resolves it from the metadata.
        percent = max(1, round(100 * val_fraction))
        val_name = f"{train_name}[{100 - percent}%:]"
        train_name = f"{train_name}[:{100 - percent}%]"
    parts = [
        _to_numpy(_read_tfds(name, split, data_dir, download), kind, size, limit)
        for split in (train_name, val_name, test_name)
    ]
    classes = _num_classes(name, data_dir)
    return Splits(*parts, classes=classes, name=name)


def _num_classes(name, data_dir):
    import tensorflow_datasets as tfds

    return int(tfds.builder(name, data_dir=data_dir).info.features["label"].num_classes)


# --- the input pipeline with augmentation ---------------------------------------------------

AUGMENTATIONS = ("flip", "translate", "randaugment", "mixup", "cutmix")


def _normalize_augment(augment):
    if augment is None or augment is False:
        return {}
    if isinstance(augment, str):
        augment = (augment,)
    if isinstance(augment, (list, tuple)):
        augment = {name: {} for name in augment}
    if not isinstance(augment, dict):
        raise TypeError(f"augment must be None, a name, a list of names or a dict, got {type(augment).__name__}")
    for name, kwargs in augment.items():
        if name not in AUGMENTATIONS:
            raise ValueError(f"augment must use names from {AUGMENTATIONS}, got {name!r}")
        if not isinstance(kwargs, dict):
            raise TypeError(f"augment[{name!r}] must be a dict of layer arguments, got {type(kwargs).__name__}")
    return augment


def augmentation_layers(augment, seed=0):
    """The Keras core layers for ``augment``: (per-image layers, batch-mixing layers).

    ``augment`` is a name, a list of names from ``AUGMENTATIONS``, or a dict from
    name to layer arguments, e.g. ``{"translate": {"height_factor": 0.2}, "mixup": {}}``.
    """
    import keras

    augment = _normalize_augment(augment)
    defaults = {
        "flip": (keras.layers.RandomFlip, {"mode": "horizontal"}),
        "translate": (keras.layers.RandomTranslation, {"height_factor": 0.1, "width_factor": 0.1}),
        "randaugment": (keras.layers.RandAugment, {"value_range": (0, 1), "num_ops": 2, "factor": 0.3}),
        "mixup": (keras.layers.MixUp, {"alpha": 0.2}),
        "cutmix": (keras.layers.CutMix, {"factor": 1.0}),
    }
    per_image, mixing = [], []
    for i, name in enumerate(n for n in AUGMENTATIONS if n in augment):
        cls, kwargs = defaults[name]
        layer = cls(**{**kwargs, **augment[name], "seed": seed + i})
        (mixing if name in ("mixup", "cutmix") else per_image).append(layer)
    return per_image, mixing


def pipeline(
    x, y, *, batch_size=64, shuffle=False, augment=None, classes=None, outputs=1, seed=0, drop_remainder=False
):
    """A ``tf.data.Dataset`` of (x, y) batches, with optional augmentation.

    With ``classes``, integer labels become one-hot vectors (what a categorical loss
    with label smoothing needs). Augmentation runs in the pipeline, on the CPU, with
    the Keras core layers (RandomFlip, RandomTranslation, RandAugment, MixUp, CutMix),
    under any Keras backend; see :func:`augmentation_layers`. MixUp and CutMix mix
    the labels too, so they need ``classes``. With ``outputs`` > 1 the target is
    repeated once per model output (auxiliary heads).
    """
    import tensorflow as tf

    _check_int(batch_size, "batch_size", 1)
    _check_int(outputs, "outputs", 1)
    if classes is not None:
        _check_int(classes, "classes", 2)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    per_image, mixing = augmentation_layers(augment, seed)
    labels = np.asarray(y)
    if (per_image or mixing) and not (labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer)):
        raise ValueError("augment needs integer labels as y (an image target would not be transformed alike)")
    if mixing and classes is None:
        raise ValueError("classes is needed when augment uses mixup or cutmix")
    ds = tf.data.Dataset.from_tensor_slices((x, labels))
    if shuffle:
        ds = ds.shuffle(min(len(x), 10000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if classes is not None:
        ds = ds.map(lambda images, labels: (images, tf.one_hot(labels, classes)))
    if per_image:

        def apply(images, labels):
            for layer in per_image:
                images = layer(images, training=True)
            return images, labels

        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    if mixing:

        def mix(images, labels):
            data = {"images": images, "labels": labels}
            for layer in mixing:
                data = layer(data, training=True)
            return data["images"], data["labels"]

        ds = ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE)
    if outputs > 1:
        ds = ds.map(lambda images, labels: (images, tuple([labels] * outputs)))
    return ds.prefetch(tf.data.AUTOTUNE)
