"""Inception v1 (GoogLeNet) and v3 against the figures their sources publish.

The parameterized suite (test_recipes.py) already checks the builders, blocks, the demo
and the InceptionV3 parity with keras.applications. Here: the course notes' naive
module (2,240 parameters), the paper's Table 1 (output sizes, ops column), the
auxiliary classifiers (placement, three-output training, weight-sharing inference
model), and torchvision's published GoogLeNet parameter count.
"""

import math

import keras
import numpy as np
import pytest

from cookbook import cost
from cookbook.recipes import inception_v1 as v1
from cookbook.recipes import inception_v3 as v3

# Table 1 of Szegedy et al. 2014 (seeds/004_*): output size and ops (M) per module.
TABLE1_OUTPUT = {
    "inception_3a": (28, 256), "inception_3b": (28, 480), "inception_4a": (14, 512),
    "inception_4b": (14, 512), "inception_4c": (14, 512), "inception_4d": (14, 528),
    "inception_4e": (14, 832), "inception_5a": (7, 832), "inception_5b": (7, 1024),
}
TABLE1_OPS_M = {
    "conv2": 360, "inception_3a": 128, "inception_3b": 304, "inception_4a": 73,
    "inception_4b": 88, "inception_4c": 100, "inception_4d": 119, "inception_4e": 170,
    "inception_5b": 71, "predictions": 1,
}
# Rows where the published ops follow the table's own (wrong) params column instead of
# the layer: 5a's 54 M = 1072K x 49 positions (a direct count gives 51.1 M), and conv1's
# 34 M = 2.7K x 112 x 112 (7x7x3x64 = 9.4K weights give 118 M). See the report/docs.
TABLE1_OPS_ERRATA_M = {"inception_5a": 54, "conv1": 34}
TORCHVISION_GOOGLENET_PARAMS = 6_624_904  # torchvision.models.googlenet, aux dropped


@pytest.fixture(scope="module")
def googlenet_224():
    return v1.googlenet()


def _kernel_weights(model, prefix):
    return sum(math.prod(layer.kernel.shape) for layer in model.layers
               if layer.name.startswith(prefix) and hasattr(layer, "kernel"))


# --- the naive module of the course notes ------------------------------------------------


def test_naive_module_has_2240_parameters():
    """InceptionModule(1, 64, 128, 32) on 1x28x28: 128 + 1,280 + 832 + 0 = 2,240."""
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, v1.naive_inception_module(inputs, 64, 128, 32, name="naive"))
    assert model.count_params() == 2240
    per_branch = {name: model.get_layer(f"naive_{name}").count_params() for name in ("1x1", "3x3", "5x5", "pool")}
    assert per_branch == {"1x1": 128, "3x3": 1280, "5x5": 832, "pool": 0}
    assert model.output.shape[1:] == (28, 28, 64 + 128 + 32 + 1)  # the pool keeps the input channel


# --- GoogLeNet against Table 1 ------------------------------------------------------------


def test_googlenet_module_outputs_match_table1(googlenet_224):
    for name, (size, depth) in TABLE1_OUTPUT.items():
        assert googlenet_224.get_layer(name).output.shape[1:] == (size, size, depth), name
    for module in v1.TABLE1:  # the 5x5 branches really are 5x5
        assert tuple(googlenet_224.get_layer(f"inception_{module}_5x5").kernel.shape[:2]) == (5, 5)


def test_googlenet_3a_weights_and_macs(googlenet_224):
    """references.md: 3a has 163,328 weights and costs 128 M MACs at 28x28."""
    assert _kernel_weights(googlenet_224, "inception_3a_") == 163_328
    blocks = {b.name: b for b in cost.block_costs(googlenet_224)}
    assert blocks["inception_3a"].macs == 163_328 * 28 * 28


def test_googlenet_macs_match_table1_ops_column(googlenet_224):
    blocks = {b.name: b.macs / 1e6 for b in cost.block_costs(googlenet_224)}
    for name, published in TABLE1_OPS_M.items():
        assert abs(blocks[name] - published) < 1.0, f"{name}: measured {blocks[name]:.1f} M, Table 1 {published} M"
    for name, published in TABLE1_OPS_ERRATA_M.items():  # documented misprints, not matched
        assert abs(blocks[name] - published) > 1.0, f"{name} now matches Table 1: update the docs"


def test_googlenet_matches_torchvision_parameter_count():
    """torchvision's GoogLeNet (BN, no conv bias) publishes 6,624,904 parameters, but its
    "5x5" branches are 3x3 (a known quirk kept for its weights). Our BN build with real
    5x5 kernels must exceed that by exactly 16 x reduce x filters per module."""
    model = v1.googlenet(batch_norm=True)
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    extra_5x5 = sum(16 * reduce_5x5 * filters_5x5 for _, _, _, reduce_5x5, filters_5x5, _ in v1.TABLE1.values())
    assert trainable - extra_5x5 == TORCHVISION_GOOGLENET_PARAMS
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in v1.googlenet(width=0.25).layers)


# --- the auxiliary classifiers -------------------------------------------------------------


def test_aux_classifiers_sit_on_4a_and_4d_as_in_the_paper(googlenet_224):
    model = v1.googlenet(aux_classifiers=True)
    assert model.outputs[0].name == model.get_layer("predictions").output.name
    for aux, module, depth in (("aux1", "inception_4a", 512), ("aux2", "inception_4d", 528)):
        pool = model.get_layer(f"{aux}_pool")
        assert pool.input.name == model.get_layer(module).output.name
        assert pool.output.shape[1:] == (4, 4, depth)  # "5x5/3 ... 4x4x512 for (4a), 4x4x528 for (4d)"
        assert model.get_layer(f"{aux}_conv").output.shape[-1] == 128
        assert model.get_layer(f"{aux}_fc").units == 1024
        assert model.get_layer(f"{aux}_dropout").rate == 0.7
    # Dropping the heads gives back exactly the plain network.
    assert v1.inference_model(model).count_params() == googlenet_224.count_params()


@pytest.mark.heavy  # subprocesses / long training: runs in make test, not the default suite
def test_googlenet_trains_with_three_outputs_and_infers_with_one():
    model = v1.googlenet(input_shape=(64, 64, 1), classes=10, width=0.25, aux_classifiers=True)
    assert len(model.outputs) == 3
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 64, 64, 1)).astype("float32")
    y = rng.integers(0, 10, 8)
    model.compile(keras.optimizers.Adam(1e-3), loss=["sparse_categorical_crossentropy"] * 3,
                  loss_weights=list(v1.AUX_LOSS_WEIGHTS), jit_compile=False)
    losses = [float(np.ravel(model.train_on_batch(x, [y, y, y]))[0]) for _ in range(8)]
    assert np.mean(losses[-3:]) < losses[0], losses

    inference = v1.inference_model(model)
    assert len(inference.outputs) == 1 and inference.output.shape[-1] == 10
    trained = {id(w) for w in model.weights}
    assert all(id(w) in trained for w in inference.weights), "the inference model must share weights"
    main = keras.ops.convert_to_numpy(model(x[:2], training=False)[0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inference(x[:2], training=False)), main, atol=1e-6)


def test_aux_and_inference_arguments_are_checked():
    with pytest.raises(ValueError, match="aux_classifiers"):
        v1.googlenet(include_top=False, aux_classifiers=True)
    with pytest.raises(TypeError, match="aux_classifiers"):
        v1.googlenet(aux_classifiers="yes")
    with pytest.raises(ValueError, match="width"):
        v1.googlenet(width=0)
    with pytest.raises(TypeError, match="training_model"):
        v1.inference_model("model")
    with pytest.raises(ValueError, match="training_model"):
        v1.inference_model(v1.googlenet(input_shape=(32, 32, 3), include_top=False, width=0.25))
    with pytest.raises(ValueError, match="aux_classifier"):
        v3.inception_v3(include_top=False, aux_classifier=True)
    with pytest.raises(ValueError, match="stem"):
        v3.inception_v3(stem="cifar")
    with pytest.raises(ValueError, match="blocks"):
        v3.inception_v3(blocks=(3, 4))


# --- Inception v3 ---------------------------------------------------------------------------


def test_inception_v3_stages_and_aux_head_match_keras_and_the_paper():
    """mixed0-mixed10 sit where keras.applications puts them, with the same shapes; the
    auxiliary head reads mixed7, the last 17x17 layer, and dropping it gives back the
    twin, weight for weight."""
    ours = v3.inception_v3(aux_classifier=True)
    twin = keras.applications.InceptionV3(weights=None)
    for i in range(11):
        assert ours.get_layer(f"mixed{i}").output.shape == twin.get_layer(f"mixed{i}").output.shape
    assert ours.get_layer("mixed7").output.shape[1:3] == (17, 17)
    assert ours.get_layer("mixed10").output.shape[1:3] == (8, 8)

    assert len(ours.outputs) == 2
    assert ours.get_layer("aux_pool").input.name == ours.get_layer("mixed7").output.name
    assert ours.get_layer("aux_conv").kernel.shape[:2] == (5, 5)  # 17x17 -> 5x5/3 pool -> 5x5 conv
    inference = v3.inference_model(ours)
    assert [tuple(w.shape) for w in inference.weights] == [tuple(w.shape) for w in twin.weights]


def test_inception_v3_low_res_stem_and_minimum_sizes():
    """Section 9's low-resolution variant: first conv stride 1, no first max-pool."""
    model = v3.inception_v3(input_shape=(79, 79, 3), stem="low_res", width=0.25, blocks=(1, 1, 1))
    assert model.get_layer("conv1").strides == (1, 1)
    assert "pool1" not in [layer.name for layer in model.layers]
    with pytest.raises(ValueError, match="input_shape"):  # keras.applications' minimum
        v3.inception_v3(input_shape=(74, 74, 3))
