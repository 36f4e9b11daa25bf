"""cookbook.data: the built-in datasets, the tfds loaders (offline, mocked) and the pipeline."""

import numpy as np
import pytest

from cookbook import data

SMALL = {"n_train": 40, "n_val": 20, "n_test": 20}


# --- cluttered digits -------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return data.cluttered_digits(**SMALL, seed=3)


def test_digits_follow_the_conventions(digits):
    assert isinstance(digits, data.Splits) and digits.classes == 10
    for split, n in zip(digits, (40, 20, 20)):
        assert split.x.shape == (n, 64, 64, 1) and split.x.dtype == np.float32
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0
        assert split.y.dtype == np.int64 and set(split.y) <= set(range(10))
        assert split.boxes.shape == (n, 4) and split.masks.shape == (n, 64, 64) and split.masks.dtype == bool
    assert sorted(np.bincount(digits.train.y, minlength=10)) == [4] * 10  # balanced


def test_boxes_are_the_tight_boxes_of_the_masks(digits):
    for box, mask in zip(digits.train.boxes, digits.train.masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert tuple(box) == (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
        y0, x0, y1, x1 = box
        assert 0 <= y0 < y1 <= 64 and 0 <= x0 < x1 <= 64
        assert 20 * 20 * 0.15 < mask.sum() < 32 * 32  # a 20-32 px glyph, not a speck


def test_the_digit_under_the_mask_is_the_labelled_scikit_learn_digit(digits):
    """Shrink the boxed region back to 8x8 and classify it against the scikit-learn
    class means: the label must be the digit that is actually drawn there."""
    from sklearn.datasets import load_digits

    ref = load_digits()
    means = np.stack([ref.images[ref.target == d].mean(0) / 16 for d in range(10)])
    hits = 0
    for img, mask, label in zip(digits.test.x[..., 0], digits.test.masks, digits.test.y):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        crop = (img * mask)[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        iy = np.linspace(0, crop.shape[0] - 1, 8).astype(int)
        ix = np.linspace(0, crop.shape[1] - 1, 8).astype(int)
        small = crop[iy][:, ix]
        scores = [np.corrcoef(small.ravel(), m.ravel())[0, 1] for m in means]
        hits += int(np.argmax(scores) == label)
    assert hits / len(digits.test.y) > 0.6  # nearest-class-mean on 8x8 sklearn digits is ~0.9


def test_digits_are_deterministic_for_a_seed():
    a = data.cluttered_digits(**SMALL, seed=1)
    b = data.cluttered_digits(**SMALL, seed=1)
    c = data.cluttered_digits(**SMALL, seed=2)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.test.boxes, b.test.boxes)
    assert not np.array_equal(a.train.x, c.train.x)
    a.train.x[:] = 0  # results are copies: the cache is not mutated
    assert data.cluttered_digits(**SMALL, seed=1).train.x.max() > 0


def test_digit_splits_use_disjoint_source_digits():
    pools = data._source_pools(0)
    assert sum(len(p) for p in pools) == 1797
    assert not set(pools[0]) & set(pools[1]) and not set(pools[0]) & set(pools[2])


def test_digits_rgb_and_size():
    s = data.cluttered_digits(n_train=10, n_val=10, n_test=10, size=40, scale=(2.0, 3.0), rgb=True)
    assert s.train.x.shape == (10, 40, 40, 3) and s.train.masks.shape == (10, 40, 40)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"n_train": 0}, ValueError, "n_train"),
        ({"n_val": "5"}, TypeError, "n_val"),
        ({"size": 16}, ValueError, "size"),
        ({"scale": (3.0, 2.0)}, ValueError, "scale"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"distractors": -1}, ValueError, "distractors"),
        ({"rgb": 1}, TypeError, "rgb"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_digits_reject_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        data.cluttered_digits(**{**SMALL, **kwargs})


# --- synthetic audio ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def audio():
    return data.synthetic_audio(n_train=64, n_val=16, n_test=16, noise=0.0, shift=0.0, seed=5)


def test_audio_follows_the_conventions(audio):
    assert audio.classes == len(data.AUDIO_CLASSES) >= 6
    for split in audio:
        assert split.x.ndim == 3 and split.x.shape[1:] == (8000, 1) and split.x.dtype == np.float32
        assert np.abs(split.x).max() <= 1.0
    assert set(audio.train.y) == set(range(audio.classes))
    wide = data.synthetic_audio(n_train=8, n_val=8, n_test=8, sample_rate=16000, duration=0.5)
    assert wide.train.x.shape == (8, 8000, 1)
    again = data.synthetic_audio(n_train=64, n_val=16, n_test=16, noise=0.0, shift=0.0, seed=5)
    np.testing.assert_array_equal(audio.train.x, again.train.x)


def _peak_frequencies(signal, sr=8000, frame=512):
    frames = signal[: len(signal) // frame * frame].reshape(-1, frame)
    mags = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1))
    return np.argmax(mags, axis=1) * sr / frame, mags.max(1)


def test_audio_classes_have_the_structure_their_names_say(audio):
    names = data.AUDIO_CLASSES
    for x, label in zip(audio.train.x[..., 0], audio.train.y):
        freqs, _energy = _peak_frequencies(x)
        slope = np.polyfit(np.arange(len(freqs)), freqs, 1)[0]
        name = names[label]
        if name == "chirp_up":
            assert slope > 0
        elif name == "chirp_down":
            assert slope < 0
        elif name in ("step_up", "step_down"):
            first, last = np.median(freqs[:3]), np.median(freqs[-3:])
            assert (last > first) == (name == "step_up")


def test_a_time_shift_keeps_a_tone_step_one_way():
    """The shift fills with silence: a circular roll would wrap a step_up's high end
    round to its start, so that every shifted step_up also held a step down."""
    shifted = data.synthetic_audio(n_train=64, n_val=8, n_test=8, noise=0.0, shift=0.3, seed=5)
    steps = 0
    for x, label in zip(shifted.train.x[..., 0], shifted.train.y):
        name = data.AUDIO_CLASSES[label]
        if name not in ("step_up", "step_down"):
            continue
        freqs, energy = _peak_frequencies(x)
        sounding = freqs[energy > 0.1 * energy.max()]
        direction = 1 if name == "step_up" else -1
        assert np.all(direction * np.diff(sounding) > -50), (name, sounding)
        steps += 1
    assert steps >= 10


def test_rising_and_falling_chirps_share_a_magnitude_spectrum():
    """Time reversal keeps |FFT|: the classes differ only in temporal structure."""
    rng = np.random.default_rng(0)
    up = data._audio_example(data.AUDIO_CLASSES.index("chirp_up"), 8000, 8000, np.random.default_rng(1))
    down = data._audio_example(data.AUDIO_CLASSES.index("chirp_down"), 8000, 8000, np.random.default_rng(1))
    del rng
    a, b = np.abs(np.fft.rfft(up)), np.abs(np.fft.rfft(down))
    assert np.corrcoef(a, b)[0, 1] > 0.95
    assert np.corrcoef(up, down)[0, 1] < 0.5


@pytest.mark.parametrize(
    "kwargs, name",
    [({"sample_rate": 22050}, "sample_rate"), ({"n_test": 0}, "n_test"), ({"shift": 2.0}, "shift")],
)
def test_audio_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        data.synthetic_audio(**{"n_train": 8, "n_val": 8, "n_test": 8, **kwargs})


# --- real datasets through tensorflow-datasets, offline ----------------------------------


@pytest.fixture
def mock_tfds():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        yield


def test_load_cifar10_offline(mock_tfds):
    s = data.load("cifar10", limit=6)
    assert s.classes == 10 and s.name == "cifar10"
    for split in s:
        assert split.x.shape[1:] == (32, 32, 3) and split.x.dtype == np.float32 and len(split) <= 6
        assert 0 <= split.x.min() and split.x.max() <= 1 and split.y.dtype == np.int64
        assert split.masks is None


def test_load_speech_commands_offline(mock_tfds):
    s = data.load("speech_commands", limit=4)
    assert s.classes == 12
    for split in s:
        assert split.x.shape[1:] == (16000, 1) and split.x.dtype == np.float32
        assert np.abs(split.x).max() <= 1.0


def test_load_oxford_pets_with_masks_offline(mock_tfds):
    s = data.load("oxford_iiit_pet", image_size=(48, 40), limit=5)
    assert s.classes == 37
    for split in s:
        assert split.x.shape[1:] == (48, 40, 3)
        assert split.masks.shape == (len(split), 48, 40) and split.masks.dtype == bool


def test_a_missing_dataset_names_itself_and_how_to_download(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(data.DatasetUnavailableError, match=r"(?s)'cifar10'.*download=True"):
        data.load("cifar10", data_dir=str(tmp_path))


def test_load_rejects_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        data.load("imagenet21k")
    with pytest.raises(ValueError, match="image_size"):
        data.load("speech_commands", image_size=(32, 32))
    with pytest.raises(TypeError, match="limit"):
        data.load("cifar10", limit="10")


# --- the pipeline and its augmentation -----------------------------------------------------


def test_augmentation_uses_keras_core_layers():
    import keras

    per_image, mixing = data.augmentation_layers(["flip", "translate", "randaugment", "mixup", "cutmix"])
    kinds = {type(layer) for layer in per_image + mixing}
    assert kinds == {keras.layers.RandomFlip, keras.layers.RandomTranslation, keras.layers.RandAugment,
                     keras.layers.MixUp, keras.layers.CutMix}
    with pytest.raises(ValueError, match="augment"):
        data.augmentation_layers("rotate90")


def test_pipeline_augments_and_mixes_labels(digits):
    ds = data.pipeline(digits.train.x, digits.train.y, batch_size=16, classes=10,
                       augment=["translate", "mixup"], shuffle=True)
    x, y = next(iter(ds))
    x, y = x.numpy(), y.numpy()
    assert x.shape == (16, 64, 64, 1) and y.shape == (16, 10)
    assert 0 <= x.min() and x.max() <= 1.0 + 1e-5
    np.testing.assert_allclose(y.sum(1), 1.0, atol=1e-5)  # mixed labels still sum to one
    assert (y.max(1) < 1 - 1e-3).any()  # and some are soft
    plain = data.pipeline(digits.train.x, digits.train.y, batch_size=8, outputs=3)
    xb, yb = next(iter(plain))
    assert isinstance(yb, tuple) and len(yb) == 3
    np.testing.assert_array_equal(xb.numpy(), digits.train.x[:8])


def test_pipeline_refuses_augmenting_image_targets(digits):
    with pytest.raises(ValueError, match="augment"):
        data.pipeline(digits.train.x, digits.train.x, augment="flip")
    with pytest.raises(ValueError, match="classes"):
        data.pipeline(digits.train.x, digits.train.y, augment="cutmix")
