"""recipes/audio.py against its references.

- M3/M5/M11/M18: the parameter counts and the feature-map sizes of Dai et al. 2017,
  Table 1 (input 32,000 samples, 4 s at 8 kHz, 10 classes).
- The residual classifier: the parameter count of the keras-io "Speaker Recognition"
  summary, and equal outputs from weights transplanted into that example's model,
  rebuilt here from its published code.
- The spectrogram front end: a pure tone peaks in the right frequency bin, and the
  raw-audio model survives the safe-mode `.keras` round trip.
"""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from cookbook.recipes import audio

ROOT = Path(__file__).resolve().parents[1]

# Dai et al. 2017, Table 1: parameters, in millions, given to one decimal.
DAI_PARAMS_M = {"m3": 0.2, "m5": 0.5, "m11": 1.8, "m18": 3.7}
# Table 1's "output" sizes (time steps x channels) after each max-pool, at 32,000 samples.
DAI_POOL_OUTPUTS = {
    "m3": [(2000, 256), (500, 256)],
    "m5": [(2000, 128), (500, 128), (125, 256), (31, 512)],
    "m11": [(2000, 64), (500, 64), (125, 128), (31, 256)],
    "m18": [(2000, 64), (500, 64), (125, 128), (31, 256)],
}
KERAS_IO_SPEAKER_PARAMS = 3_088_597  # keras-io Speaker Recognition, model.summary(), 5 speakers


@pytest.mark.parametrize("name", sorted(DAI_PARAMS_M))
def test_dai_parameter_count_matches_table_1(name):
    model = getattr(audio, name)(input_shape=(32000, 1), classes=10)
    # The table rounds to 0.1 M (M5's 0.56 M is printed as 0.5 M), so allow 0.07 M.
    assert abs(model.count_params() / 1e6 - DAI_PARAMS_M[name]) <= 0.07, model.count_params()


@pytest.mark.parametrize("name", sorted(DAI_POOL_OUTPUTS))
def test_dai_feature_map_sizes_match_table_1(name):
    model = getattr(audio, name)(input_shape=(32000, 1), classes=10)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling1D)]
    assert [tuple(p.output.shape[1:]) for p in pools] == DAI_POOL_OUTPUTS[name]
    if name in ("m11", "m18"):  # their last group (512 channels) is not pooled
        assert tuple(model.get_layer("avg_pool").input.shape[1:]) == (31, 512)


@pytest.mark.parametrize("name", sorted(DAI_PARAMS_M))
def test_dai_layer_pattern(name):
    """An 80/4 stem, then only 3-tap stride-1 convs, each followed by BN; GAP before the classifier."""
    model = getattr(audio, name)(input_shape=(4096, 1), classes=10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert (convs[0].kernel_size, convs[0].strides) == ((80,), (4,))
    assert all(c.kernel_size == (3,) and c.strides == (1,) for c in convs[1:])
    n_convs = 1 + sum(n for _, n in audio.DAI_LAYOUTS[name]["groups"])
    assert len(convs) == n_convs  # M5 has 4 conv layers, M11 has 10, M18 has 17 (plus the FC)
    layers = model.layers
    for conv in convs:
        following = layers[layers.index(conv) + 1]
        assert isinstance(following, keras.layers.BatchNormalization), conv.name
    assert isinstance(layers[-2], keras.layers.GlobalAveragePooling1D)
    assert not any(isinstance(layer, keras.layers.Flatten) for layer in layers)


def test_dai_weight_count_by_layer_formula():
    """M5 conv weights: 80*1*128 + 3*128*128 + 3*128*256 + 3*256*512 (no bias before BN)."""
    model = audio.m5(input_shape=(32000, 1), classes=10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert sum(c.count_params() for c in convs) == 80 * 128 + 3 * 128 * 128 + 3 * 128 * 256 + 3 * 256 * 512


def test_dai_rejects_too_short_input():
    with pytest.raises(ValueError, match="input_shape"):
        audio.m5(input_shape=(1000, 1))  # the stride 4 and four 4x pools: 4 * 4**4 = 1024 is the shortest
    audio.m5(input_shape=(1024, 1), classes=2)
    with pytest.raises(ValueError, match="filters"):  # Keras names it: width 0 leaves no filters
        audio.m5(width=0.0)


def test_width_multiplies_every_layer_of_table_1():
    """width=0.375 turns M5's 128, 128, 256, 512 filters into 48, 48, 96, 192."""
    model = audio.m5(input_shape=(2048, 1), classes=10, width=0.375)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert [c.filters for c in convs] == [int(f * 0.375) for f in (128, 128, 256, 512)]


def test_dai_headless_outputs():
    pooled = audio.m5(input_shape=(2048, 1), include_top=False, pooling="avg", width=0.0625)
    assert pooled.output_shape == (None, 32)  # 512 / 16
    features = audio.m11(input_shape=(2048, 1), include_top=False, width=0.0625)
    assert features.output_shape[-1] == 32 and len(features.output_shape) == 3


def test_keras_applications_calls_in_one_dimension():
    """keras.applications' protocol, with (samples, channels) for (height, width, channels):
    the default length with a top, any length and channel count without one, an input
    tensor from a strided conv, max pooling."""
    assert audio.m5().input_shape == (None, 32000, 1)  # Dai et al.'s 4 s at 8 kHz
    for channels in (1, 2):
        model = audio.m5(include_top=False, input_shape=(None, channels))
        assert model.output_shape == (None, None, 512)
    assert audio.m5(include_top=False).input_shape == (None, None, 1)
    inputs = keras.Input((4096, 2))
    tensor = keras.layers.Conv1D(1, 2, strides=2)(inputs)
    model = audio.m5(include_top=False, input_tensor=tensor, pooling="max")
    assert model.input_shape == (None, 4096, 2) and model.output_shape == (None, 512)
    with pytest.raises(ValueError, match="input_shape"):  # the keras-io head flattens: a fixed length
        audio.audio_resnet(input_shape=(None, 1))


def test_feature_stages_follow_table_1():
    """M5's stage outputs at 32,000 samples: the stem before its pool (8,000 steps), then
    each group before its pool: Table 1's 2,000, 500 and 125 steps."""
    model = audio.m5(input_shape=(32000, 1), classes=10)
    stages = audio.feature_stages(model)
    assert [tuple(model.get_layer(s).output.shape[1:]) for s in stages] == [
        (8000, 128), (2000, 128), (500, 256), (125, 512)]
    resnet = audio.audio_resnet(input_shape=(8000, 1), classes=5)
    assert [resnet.get_layer(s).output.shape[1] for s in audio.feature_stages(resnet)] == [
        8000, 4000, 2000, 1000, 500]


# --- the keras-io speaker-recognition classifier -------------------------------------------


def _keras_io_speaker_model(input_shape, num_classes):
    """The model of keras-io examples/audio/speaker_recognition_using_cnn.py, as published."""

    def residual_block(x, filters, conv_num=3, activation="relu"):
        s = keras.layers.Conv1D(filters, 1, padding="same")(x)
        for _ in range(conv_num - 1):
            x = keras.layers.Conv1D(filters, 3, padding="same")(x)
            x = keras.layers.Activation(activation)(x)
        x = keras.layers.Conv1D(filters, 3, padding="same")(x)
        x = keras.layers.Add()([x, s])
        x = keras.layers.Activation(activation)(x)
        return keras.layers.MaxPool1D(pool_size=2, strides=2)(x)

    inputs = keras.layers.Input(shape=input_shape, name="input")
    x = residual_block(inputs, 16, 2)
    x = residual_block(x, 32, 2)
    x = residual_block(x, 64, 3)
    x = residual_block(x, 128, 3)
    x = residual_block(x, 128, 3)
    x = keras.layers.AveragePooling1D(pool_size=3, strides=3)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="output")(x)
    return keras.models.Model(inputs=inputs, outputs=outputs)


def test_audio_resnet_matches_published_parameter_count():
    model = audio.audio_resnet(input_shape=(8000, 1), classes=5)
    assert model.count_params() == KERAS_IO_SPEAKER_PARAMS


def test_audio_resnet_transplant_from_keras_io_model():
    reference = _keras_io_speaker_model((960, 1), 5)
    ours = audio.audio_resnet(input_shape=(960, 1), classes=5)
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in reference.weights]
    rng = np.random.default_rng(0)
    reference.set_weights([rng.normal(0, 0.1, tuple(w.shape)).astype("float32") for w in reference.weights])
    ours.set_weights(reference.get_weights())
    x = rng.uniform(-1, 1, (2, 960, 1)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_residual_block_1d_shape_and_shortcut():
    inputs = keras.Input((64, 3))
    out = audio.residual_block_1d(inputs, 8, num_convs=2, name="b")
    model = keras.Model(inputs, out)
    assert tuple(out.shape[1:]) == (32, 8)
    shortcut = model.get_layer("b_shortcut")
    assert shortcut.kernel_size == (1,) and shortcut.count_params() == 3 * 8 + 8
    assert {model.get_layer(f"b_conv{i}").kernel_size for i in (1, 2)} == {(3,)}


# --- the spectrogram front end ------------------------------------------------------------


def test_spectrogram_front_end_finds_a_pure_tone():
    sr, frame_length, frame_step = 8000, 256, 128
    model = audio.spectrogram_cnn(input_shape=(4096, 1), frame_length=frame_length, frame_step=frame_step,
                                  width=0.125, classes=3)
    front = keras.Model(model.input, model.get_layer("spectrogram").output)
    t = np.arange(4096) / sr
    for freq in (500.0, 1250.0, 3000.0):
        x = np.sin(2 * np.pi * freq * t).astype("float32")[None, :, None]
        spec = keras.ops.convert_to_numpy(front(x))[0, :, :, 0]  # (frames, bins)
        assert spec.shape == ((4096 - frame_length) // frame_step + 1, frame_length // 2 + 1)
        assert np.all(np.argmax(spec, axis=1) == round(freq * frame_length / sr))
    assert not model.get_layer("spectrogram").trainable_weights


def test_spectrogram_cnn_takes_raw_audio_and_round_trips(tmp_path):
    model = audio.spectrogram_cnn(input_shape=(2048, 1), classes=4, width=0.125)
    assert model.input_shape == (None, 2048, 1)
    x = np.random.default_rng(0).normal(0, 0.3, (2, 2048, 1)).astype("float32")
    path = tmp_path / "spec.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_spectrogram_cnn_rejects_bad_framing():
    with pytest.raises(ValueError, match="input_shape"):
        audio.spectrogram_cnn(input_shape=(1000, 1))  # 8 frames for 3 pools: 256 + 7 * 128 = 1152 samples
    with pytest.raises(ValueError, match="frame_step"):  # Keras's STFTSpectrogram names it
        audio.spectrogram_cnn(frame_step=0)
    model = audio.spectrogram_cnn(input_shape=(2048, 1), classes=3, width=0.125, blocks=(2, 1))
    assert [model.get_layer(s).output.shape[-1] for s in audio.feature_stages(model)] == [4, 8]


@pytest.mark.slow
def test_recipes_run_under_jax(tmp_path):
    """The standalone recipe builds, runs and round-trips under the JAX backend too."""
    code = (
        "import keras, numpy as np; from cookbook.recipes import audio\n"
        "assert keras.backend.backend() == 'jax'\n"
        "for m in (audio.m5(input_shape=(2048, 1), classes=3, width=0.0625),\n"
        "          audio.spectrogram_cnn(input_shape=(2048, 1), classes=3, width=0.125),\n"
        "          audio.audio_resnet(input_shape=(512, 1), classes=3)):\n"
        "    x = np.random.rand(2, 2048 if m.input_shape[1] == 2048 else 512, 1).astype('float32')\n"
        "    m.compile('adam', 'sparse_categorical_crossentropy')\n"
        "    m.train_on_batch(x, np.array([0, 1]))\n"
        f"    m.save({str(tmp_path / 'm.keras')!r})\n"
        f"    l = keras.saving.load_model({str(tmp_path / 'm.keras')!r}, safe_mode=True)\n"
        "    np.testing.assert_allclose(m.predict(x, verbose=0), l.predict(x, verbose=0), atol=1e-6)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
