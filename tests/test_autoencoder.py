"""recipes/autoencoder.py against its references.

- The keras-io denoising autoencoder: 28,353 parameters (published), layer for layer.
- ESPCN in the keras-io layout: 59,657 parameters at r = 3 (published summary); the
  Reshape/Permute depth-to-space equals tf.nn.depth_to_space.
- `transpose_output_size` against the shapes Keras's Conv2DTranspose really produces.
- Odena et al.'s checkerboard: a stride-2, kernel-3 transpose conv with constant weights
  on a constant input gives an uneven output; resize-then-conv and sub-pixel do not.
- The strided autoencoder downsamples without pooling; the U-Net's skips join maps of
  the same size; every builder survives the safe-mode `.keras` round trip.
"""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from cookbook.recipes import autoencoder as ae
from recipe_fixtures import SMALL

ROOT = Path(__file__).resolve().parents[1]
KERAS_IO_DENOISER_PARAMS = 28_353  # keras-io "Convolutional autoencoder for image denoising"
KERAS_IO_ESPCN_PARAMS = 59_657  # keras-io "Image Super-Resolution using an Efficient Sub-Pixel CNN"


# --- published parameter counts ---------------------------------------------------------


def test_denoising_autoencoder_matches_keras_io():
    model = ae.denoising_autoencoder(input_shape=(28, 28, 1))
    assert model.count_params() == KERAS_IO_DENOISER_PARAMS
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
                     "Conv2DTranspose", "Conv2DTranspose", "Conv2D"]
    tconvs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert all(t.filters == 32 and t.kernel_size == (3, 3) and t.strides == (2, 2) for t in tconvs)
    assert model.layers[-1].filters == 1 and model.layers[-1].activation.__name__ == "sigmoid"
    assert model.output_shape == (None, 28, 28, 1)


def test_espcn_matches_keras_io_parameter_count():
    model = ae.espcn(input_shape=(100, 100, 1), upscale_factor=3)
    assert model.count_params() == KERAS_IO_ESPCN_PARAMS
    assert model.output_shape == (None, 300, 300, 1)
    # every conv runs at the low resolution: the image is enlarged only by the last layer
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(tuple(c.output.shape[1:3]) == (100, 100) for c in convs)


@pytest.mark.parametrize("factor,channels", [(2, 1), (3, 2), (4, 3)])
def test_depth_to_space_equals_tensorflow(factor, channels):
    tf = pytest.importorskip("tensorflow")
    inputs = keras.Input((5, 7, channels * factor * factor))
    model = keras.Model(inputs, ae._depth_to_space(inputs, factor, name="d2s"))
    x = np.random.default_rng(0).normal(size=(2, 5, 7, channels * factor * factor)).astype("float32")
    expected = tf.nn.depth_to_space(x, factor).numpy()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), expected)


# --- transpose-conv arithmetic ------------------------------------------------------------


def _keras_lengths(i, k, s, padding, output_padding):
    """(the length Keras infers for the graph, the length the backend really computes or None)."""
    layer = keras.layers.Conv2DTranspose(1, k, strides=s, padding=padding, output_padding=output_padding)
    inferred = int(layer.compute_output_shape((1, i, i, 1))[1])
    try:
        real = int(layer(np.zeros((1, i, i, 1), "float32")).shape[1])
    except Exception:  # TensorFlow rejects even kernels with 'same' and explicit output_padding
        real = None
    return inferred, real


GRID = [
    (i, k, s, padding, op)
    for i, k, s, padding in itertools.product((1, 2, 5, 7), (1, 2, 3, 4, 5), (1, 2, 3), ("valid", "same"))
    for op in (None, *range(s))
]


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
def test_transpose_output_size_matches_keras_over_a_grid():
    mismatches, ran = [], 0
    for args in GRID:
        inferred, real = _keras_lengths(*args)
        if inferred < 1:  # Keras would build an empty tensor: we refuse instead
            with pytest.raises(ValueError, match="empty"):
                ae.transpose_output_size(*args)
            continue
        ours = ae.transpose_output_size(*args)
        if ours != inferred or (real is not None and ours != real):
            mismatches.append((args, ours, inferred, real))
        ran += real is not None
        if real is None:  # only this known TensorFlow limitation may fail to run
            _, k, _, padding, op = args
            assert keras.backend.backend() == "tensorflow" and k % 2 == 0 and padding == "same" and op == 0
    assert not mismatches, mismatches[:5]
    assert ran >= 0.9 * len(GRID)


def test_transpose_output_size_inverts_a_valid_conv():
    """Dumoulin and Visin: a valid conv with (k, s) maps the transpose's output back to i."""
    for i, k, s in itertools.product(range(1, 9), range(1, 6), range(1, 4)):
        if k >= s:
            o = ae.transpose_output_size(i, k, s, "valid", 0)
            assert (o - k) // s + 1 == i


def test_transpose_output_size_rejects_bad_arguments():
    with pytest.raises(ValueError, match="output_padding"):
        ae.transpose_output_size(4, 3, 2, "same", 2)  # Keras needs output_padding < stride
    with pytest.raises(ValueError, match="output_padding"):
        keras.layers.Conv2DTranspose(1, 3, strides=2, output_padding=2)(np.zeros((1, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match="padding"):
        ae.transpose_output_size(4, 3, 2, "full")


# --- checkerboard artifacts (Odena, Dumoulin and Olah 2016) ------------------------------


def _constant_upsample(method, kernel_size=3):
    inputs = keras.Input((8, 8, 1))
    outputs = ae.upsample(inputs, 1, method=method, factor=2, kernel_size=kernel_size, activation=None, name="up")
    model = keras.Model(inputs, outputs)
    for layer in model.layers:
        for weight in layer.weights:  # every kernel tap 1, every bias 0
            weight.assign(np.ones(weight.shape, "float32") * ("kernel" in weight.path))
    out = keras.ops.convert_to_numpy(model(np.ones((1, 8, 8, 1), "float32")))[0, ..., 0]
    return out[3:-3, 3:-3]  # the interior, away from the zero padding at the borders


def test_transpose_conv_kernel3_stride2_makes_a_checkerboard():
    interior = _constant_upsample("transpose")
    # Uneven overlap: pixels hit by 1, 2 or 4 kernel taps.
    assert set(np.unique(interior)) == {1.0, 2.0, 4.0}
    assert interior[0::2, 0::2].std() == 0 and interior.std() > 0.5


def test_kernel_divisible_by_stride_has_no_checkerboard():
    assert np.ptp(_constant_upsample("transpose", kernel_size=4)) == 0


@pytest.mark.parametrize("method", ["resize", "subpixel"])
def test_resize_conv_and_subpixel_are_even(method):
    interior = _constant_upsample(method)
    assert np.ptp(interior) == 0 and interior.mean() == 9.0  # a full 3x3 of ones everywhere


# --- the builders ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ae.UPSAMPLING)
def test_conv_autoencoder_has_no_pooling_and_restores_the_size(method):
    model = ae.conv_autoencoder(input_shape=(32, 32, 1), filters=(8, 16), bottleneck=3, upsampling=method)
    assert model.output_shape == (None, 32, 32, 1)
    assert not any("Pooling" in type(layer).__name__ for layer in model.layers)
    strided = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
               and not isinstance(layer, keras.layers.Conv2DTranspose) and layer.strides == (2, 2)]
    assert len(strided) == 2
    assert tuple(model.get_layer("bottleneck").output.shape[1:]) == (8, 8, 3)


def test_conv_autoencoder_bottleneck_is_configurable():
    sizes = [ae.conv_autoencoder(input_shape=(28, 28, 1), bottleneck=b).get_layer("bottleneck").output.shape
             for b in (2, 32)]
    assert [tuple(s[1:]) for s in sizes] == [(7, 7, 2), (7, 7, 32)]


def test_unet_skips_join_maps_of_the_same_size():
    model = ae.unet(input_shape=(32, 32, 1), filters=(8, 16, 32), classes=2)
    assert model.output_shape == (None, 32, 32, 2)
    concats = [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]
    assert len(concats) == 2
    for concat in concats:
        a, b = concat.input
        assert a.shape[1:3] == b.shape[1:3]
    assert model.get_layer("up1_concat").input[1].shape == model.get_layer("down2_relu2").output.shape
    assert model.get_layer("up2_concat").input[1].shape == model.get_layer("down1_relu2").output.shape


def test_feature_stages_are_the_encoder_levels():
    """Shallow to deep, each level half the size of the one before (ESPCN stays at the
    low resolution); the U-Net's stages are the maps its skip connections carry."""
    model = ae.unet(input_shape=(32, 32, 1), filters=(8, 16, 32))
    stages = ae.feature_stages(model)
    assert [model.get_layer(s).output.shape[1] for s in stages] == [32, 16, 8]
    assert [model.get_layer(f"up{i}_concat").input[1].name for i in (2, 1)] == \
        [model.get_layer(s).output.name for s in stages[:2]]
    model = ae.conv_autoencoder(input_shape=(32, 32, 1), filters=(8, 16, 32))
    assert [model.get_layer(s).output.shape[1] for s in ae.feature_stages(model)] == [16, 8, 4, 4]
    model = ae.denoising_autoencoder(input_shape=(48, 48, 1))
    assert [model.get_layer(s).output.shape[1] for s in ae.feature_stages(model)] == [48, 24, 12]
    model = ae.espcn(input_shape=(16, 16, 1), upscale_factor=2)
    assert [model.get_layer(s).output.shape[1] for s in ae.feature_stages(model)] == [16, 16, 16]


@pytest.mark.parametrize("builder", sorted(SMALL["autoencoder"]))
def test_every_builder_round_trips_in_safe_mode(builder, tmp_path):
    model = getattr(ae, builder)(**SMALL["autoencoder"][builder])
    x = np.random.default_rng(0).uniform(0, 1, (2, *model.input_shape[1:])).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("call,argument,error", [
    (lambda: ae.conv_autoencoder(upsampling="deconv"), "upsampling", ValueError),
    (lambda: ae.conv_autoencoder(input_shape=(30, 30, 1)), "input_shape", ValueError),
    (lambda: ae.conv_autoencoder(bottleneck=0), "filters", ValueError),  # Keras: the 1x1 conv's filters
    (lambda: ae.denoising_autoencoder(input_shape=(30, 30, 1)), "input_shape", ValueError),
    (lambda: ae.denoising_autoencoder(input_shape=(None, None, 1)), "input_shape", ValueError),
    (lambda: ae.espcn(upscale_factor=0), "upscale_factor", ValueError),
    (lambda: ae.espcn(input_shape=(8, 8, 1)), "input_shape", ValueError),
    (lambda: ae.unet(filters=(16,)), "filters", ValueError),
    (lambda: ae.unet(input_shape=(34, 34, 1)), "input_shape", ValueError),
    (lambda: ae.upsample(keras.Input((4, 4, 1)), 4, kernel_size=0), "kernel_size", ValueError),
    (lambda: ae.upsample(keras.Input((4, 4, 1)), 4, method="deconv"), "method", ValueError),
])
def test_bad_arguments_name_the_argument(call, argument, error):
    with pytest.raises(error, match=argument):
        call()


@pytest.mark.slow
def test_recipes_run_under_jax(tmp_path):
    """Every builder trains a step and round-trips under the JAX backend too."""
    path = str(tmp_path / "m.keras")
    code = (
        "import keras, numpy as np; from cookbook.recipes import autoencoder as ae\n"
        "from recipe_fixtures import SMALL\n"
        "assert keras.backend.backend() == 'jax'\n"
        "for name, kwargs in SMALL['autoencoder'].items():\n"
        "    m = getattr(ae, name)(**kwargs)\n"
        "    x = np.random.rand(2, *m.input_shape[1:]).astype('float32')\n"
        "    m.compile('adam', 'mse')\n"
        "    m.train_on_batch(x, np.random.rand(2, *m.output_shape[1:]).astype('float32'))\n"
        f"    m.save({path!r})\n"
        f"    l = keras.saving.load_model({path!r}, safe_mode=True)\n"
        "    np.testing.assert_allclose(m.predict(x, verbose=0), l.predict(x, verbose=0), atol=1e-6)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
