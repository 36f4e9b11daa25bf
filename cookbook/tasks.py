"""The task table: for each kind of recipe, the data its demo trains on, the target, the
loss, the test metric, the bar a demo must reach, and the views its page shows.

Train, render and the tests read this table; nothing else checks task names. It is
plain data (no Keras import), so the CLI and the registry can read it instantly.
"""

from __future__ import annotations

import dataclasses

__all__ = ["TASKS", "Task", "get"]


@dataclasses.dataclass(frozen=True)
class Task:
    """What a recipe's demo is trained and judged on."""

    name: str
    dataset: str  # a built-in dataset of cookbook.data
    data_kwargs: dict  # the same for every recipe of the task, so their demos compare fairly
    target: str  # what the model predicts: "labels", "denoise", ... (see cookbook.train.TARGETS)
    loss: str | None  # None: cookbook.train.fit's default for the target
    metric: str  # the key of the test metric in the manifest
    goal: float  # every demo must reach this on held-out data (accuracy, or dB of PSNR gained)
    views: tuple  # the task views the render draws, in page order


# A VAE's held-out ELBO must beat, by this many nats per image, the best model that treats
# the pixels as independent Bernoullis (each with its mean over the test images): the bound
# then says the test digits are e^20 times likelier under the VAE, at least.
GOAL_ELBO_GAIN = 20.0

# A VAE's and a GAN's data: clean digits alone, 28-32 px on a 32x32 canvas. Little room to
# move, so a code spends itself on the shape of the digit rather than on where it is.
LONE_DIGITS = {"size": 32, "scale": (3.5, 4.0), "distractors": 0, "noise": 0.0,
               "n_train": 3000, "n_val": 500, "n_test": 1000}

# A GAN's samples must look like digits to a classifier trained on the real ones: this share
# of them classified with probability >= 0.9 (cookbook.gan.sample_quality). An untrained
# generator's noise scores 0; the held-out real digits score about 0.94 with the page's judge.
GOAL_CONFIDENT_SHARE = 0.40

TASKS = {
    "classification": Task(
        name="classification",
        dataset="cluttered_digits",
        # 64x64 canvases: digits of 20-32 px among fragments of other digits and noise.
        data_kwargs={"size": 64, "n_train": 5000, "n_val": 500, "n_test": 1000},
        target="labels",
        loss=None,
        metric="test_accuracy",
        goal=0.90,
        views=("gradcam", "evidence", "representations"),
    ),
    "audio": Task(
        name="audio",
        dataset="synthetic_audio",
        data_kwargs={"n_train": 3000, "n_val": 500, "n_test": 1000},
        target="labels",
        loss=None,
        metric="test_accuracy",
        goal=0.90,
        views=("audio",),
    ),
    "autoencoder": Task(
        name="autoencoder",
        dataset="cluttered_digits",
        data_kwargs={"size": 48, "noise": 0.0, "n_train": 4000, "n_val": 300, "n_test": 500},
        target="denoise",  # input: the image plus Gaussian noise; target: the clean image
        loss="binary_crossentropy",  # per-pixel targets in [0, 1], as keras-io trains it
        metric="psnr_gain_db",
        goal=6.0,
        views=("reconstructions",),
    ),
    "segmentation": Task(
        name="segmentation",
        dataset="cluttered_digits",
        data_kwargs={"size": 64, "n_train": 5000, "n_val": 500, "n_test": 1000},  # the classifiers' canvases
        target="masks",  # the digit's pixels, not the fragments of other digits around it
        loss="binary_crossentropy",
        metric="test_mean_iou",
        goal=0.80,
        views=("segmentation", "score_map"),
    ),
    "generative": Task(
        name="generative",
        dataset="cluttered_digits",
        data_kwargs=LONE_DIGITS,
        target="reconstruct",  # input and target: the same image
        loss="binary_crossentropy",  # each pixel a Bernoulli probability: the ELBO's likelihood term
        metric="elbo_gain_nats",
        goal=GOAL_ELBO_GAIN,
        views=("generative",),
    ),
    "adversarial": Task(
        name="adversarial",
        dataset="cluttered_digits",
        data_kwargs=LONE_DIGITS,
        target="adversarial",  # input: real images; the model scores them and G's (recipes/dcgan.py)
        loss=None,  # two players, two losses: cookbook.gan.train_gan
        metric="confident_share",
        goal=GOAL_CONFIDENT_SHARE,
        views=("adversarial",),
    ),
}


def get(name: str) -> Task:
    """The task called ``name``; an unknown name raises ValueError listing the known ones."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {name!r}")
    return TASKS[name]
