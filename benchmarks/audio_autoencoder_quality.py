"""Quality figures for recipes/audio.py and recipes/autoencoder.py on the built-in data.

Four measurements, each a short training on the CPU (about 3 minutes or less):

- ``m5``: the audio DEMO's model (M5, stem width 32) on ``synthetic_audio``, trained
  for 15 epochs on 5,000 examples; held-out accuracy (goal: at least 90%).
- ``denoise``: the autoencoder DEMO's model (the keras-io denoising autoencoder) on clean
  ``cluttered_digits`` with Gaussian noise (sigma 0.2, clipped) added to the input;
  held-out PSNR against the clean image, next to the PSNR of the noisy input itself
  (goal: at least +6 dB).
- ``unet``: the U-Net on ``cluttered_digits`` masks; held-out mean IoU over the two
  classes (digit, background), as keras.metrics.MeanIoU defines it, and the digit's
  own IoU (goal: mean IoU at least 0.8).
- ``superres``: ESPCN at x2 (32 -> 64 px) on clean ``cluttered_digits``; held-out PSNR
  against bilinear upsampling of the same low-resolution input (goal: beat bilinear).

``m5`` and ``denoise`` train the DEMO builders and kwargs longer than the one-minute
DEMOs do (``M5_TRAINING``, ``DENOISE_TRAINING``), with the data conventions of
``cookbook.train``; all four use plain ``model.fit``. Run from the repository root:

    .venv/bin/python benchmarks/audio_autoencoder_quality.py [--only m5,denoise,unet,superres]
        [--out benchmarks/results/audio_autoencoder_quality.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cookbook import data as cdata  # noqa: E402
from cookbook import io as cio  # noqa: E402
from cookbook.recipes import audio  # noqa: E402
from cookbook.recipes import autoencoder as ae  # noqa: E402

MEASURES = ("m5", "denoise", "unet", "superres")
NOISE_SIGMA = 0.2  # the noise cookbook.train adds for target "denoise"
GOALS = {"m5": "accuracy >= 0.90", "denoise": "gain >= 6 dB", "unet": "mean IoU >= 0.80",
         "superres": "PSNR above bilinear"}


def psnr(pred, target):
    """Mean per-image PSNR in dB for images in [0, 1]."""
    mse = np.mean(np.square(pred.astype("float64") - target), axis=tuple(range(1, target.ndim)))
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))


def _fit(model, x, y, val, *, epochs, loss, batch_size=32, learning_rate=1e-3, seed=0):
    """Plain model.fit: Adam with cosine decay, early stopping on the validation loss.

    (cookbook.train.fit does the same with AdamW; this script keeps to plain Keras so its
    figures do not move with the training helper.)
    """
    keras.utils.set_random_seed(seed)
    steps = epochs * int(np.ceil(len(x) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    stop = keras.callbacks.EarlyStopping(patience=4, restore_best_weights=True)
    history = model.fit(x, y, validation_data=val, epochs=epochs, batch_size=batch_size, shuffle=True,
                        callbacks=[stop], verbose=0)
    return len(history.epoch)


M5_TRAINING = {"n": (5000, 500, 1000), "epochs": 15}  # (train, val, test) examples
DENOISE_TRAINING = {"n": (1500, 300, 500), "epochs": 9, "size": 64}


def _demo_data_kwargs(module):
    """The DEMO's dataset arguments, less its sizes (the benchmark sets its own)."""
    kwargs = dict(module.DEMO.get("data_kwargs", {}))
    for key in ("n_train", "n_val", "n_test"):
        kwargs.pop(key, None)
    return kwargs


def measure_m5(seed):
    """The audio DEMO's model, M5 (stem width 32), on synthetic_audio, sparse labels.

    Trained longer than the DEMO (which is sized for a one-minute docs render):
    M5_TRAINING's examples and epochs.
    """
    start = time.perf_counter()
    kwargs = _demo_data_kwargs(audio)
    n = M5_TRAINING["n"]
    splits = cdata.synthetic_audio(*n, seed=seed, **kwargs)
    model = audio.m5(**audio.DEMO["kwargs"])
    epochs = _fit(model, splits.train.x, splits.train.y, (splits.val.x, splits.val.y),
                  epochs=M5_TRAINING["epochs"], loss="sparse_categorical_crossentropy",
                  learning_rate=audio.DEMO.get("learning_rate", 1e-3), seed=seed)
    pred = np.argmax(model.predict(splits.test.x, batch_size=64, verbose=0), axis=-1)
    accuracy = float(np.mean(pred == splits.test.y))
    return {"test_accuracy": accuracy, "epochs": epochs, "params": int(model.count_params()),
            "n_train": n[0], "n_test": n[2], "seconds": time.perf_counter() - start, "passed": accuracy >= 0.90}


def _add_noise(x, seed, k, sigma=NOISE_SIGMA):
    rng = np.random.default_rng([seed, 999, k])
    return np.clip(x + rng.normal(0, sigma, x.shape).astype("float32"), 0, 1)


def measure_denoise(seed):
    """The autoencoder DEMO's model: noisy cluttered digits in, the clean image out.

    Trained longer and larger than the DEMO (which is sized for a one-minute docs
    render): DENOISE_TRAINING's canvas, examples and epochs.
    """
    start = time.perf_counter()
    kwargs = _demo_data_kwargs(ae)
    n, size = DENOISE_TRAINING["n"], DENOISE_TRAINING["size"]
    splits = cdata.cluttered_digits(*n, size=size, seed=seed, **kwargs)
    noisy = [_add_noise(s.x, seed, k) for k, s in enumerate(splits)]
    model = ae.denoising_autoencoder(**{**ae.DEMO["kwargs"], "input_shape": (size, size, 1)})
    # Binary cross-entropy, as keras-io trains it: with MSE, the sigmoid output of a
    # mostly black image saturates at 0 and the model settles on a black picture.
    epochs = _fit(model, noisy[0], splits.train.x, (noisy[1], splits.val.x),
                  epochs=DENOISE_TRAINING["epochs"], loss="binary_crossentropy", learning_rate=ae.DEMO.get("learning_rate", 1e-3),
                  seed=seed)
    before = psnr(noisy[2], splits.test.x)
    after = psnr(model.predict(noisy[2], batch_size=64, verbose=0), splits.test.x)
    return {"noisy_psnr_db": before, "denoised_psnr_db": after, "gain_db": after - before,
            "noise_sigma": NOISE_SIGMA, "epochs": epochs, "params": int(model.count_params()),
            "n_train": n[0], "n_test": n[2], "seconds": time.perf_counter() - start, "passed": after - before >= 6.0}


def measure_unet(seed, n=(2000, 300, 500), epochs=8):
    """U-Net on cluttered-digit masks (the digit, not the distractor fragments)."""
    start = time.perf_counter()
    splits = cdata.cluttered_digits(*n, size=64, seed=seed)
    model = ae.unet(input_shape=(64, 64, 1), filters=(8, 16, 32))
    target = [s.masks[..., None].astype("float32") for s in splits]
    epochs = _fit(model, splits.train.x, target[0], (splits.val.x, target[1]), epochs=epochs,
                  loss="binary_crossentropy", learning_rate=3e-3, seed=seed)
    pred = model.predict(splits.test.x, batch_size=64, verbose=0)[..., 0] > 0.5
    true = splits.test.masks
    digit_iou = np.sum(pred & true) / np.sum(pred | true)
    background_iou = np.sum(~pred & ~true) / np.sum(~pred | ~true)
    mean_iou = float((digit_iou + background_iou) / 2)
    return {"mean_iou": mean_iou, "digit_iou": float(digit_iou), "background_iou": float(background_iou),
            "epochs": epochs, "params": int(model.count_params()), "n_train": n[0],
            "n_test": n[2], "seconds": time.perf_counter() - start, "passed": mean_iou >= 0.8}


def _downscale(x, factor):
    n, h, w, c = x.shape
    return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def measure_superres(seed, n=(2000, 300, 500), epochs=8):
    """ESPCN x2 (32 -> 64 px, 2x2 box-averaged input) against bilinear upsampling."""
    start = time.perf_counter()
    splits = cdata.cluttered_digits(*n, size=64, noise=0.0, seed=seed)
    low = [_downscale(s.x, 2) for s in splits]
    model = ae.espcn(input_shape=(32, 32, 1), upscale_factor=2)
    epochs = _fit(model, low[0], splits.train.x, (low[1], splits.val.x), epochs=epochs, loss="mse", seed=seed)
    high = splits.test.x
    sr = np.clip(model.predict(low[2], batch_size=64, verbose=0), 0, 1)
    bilinear = keras.ops.convert_to_numpy(keras.ops.image.resize(low[2], (64, 64), interpolation="bilinear"))
    ours, base = psnr(sr, high), psnr(np.clip(bilinear, 0, 1), high)
    return {"espcn_psnr_db": ours, "bilinear_psnr_db": base, "gain_db": ours - base,
            "epochs": epochs, "params": int(model.count_params()), "n_train": n[0],
            "n_test": n[2], "seconds": time.perf_counter() - start, "passed": ours > base}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(MEASURES), help=f"comma-separated subset of {MEASURES}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    chosen = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in MEASURES]
    if unknown:
        parser.error(f"--only: unknown measurement(s) {unknown}; choose from {MEASURES}")

    keras.utils.set_random_seed(args.seed)
    functions = {"m5": measure_m5, "denoise": measure_denoise, "unet": measure_unet, "superres": measure_superres}
    results = {"backend": keras.backend.backend(), "keras": keras.__version__,
               "machine": platform.processor() or platform.machine(), "seed": args.seed}
    for name in chosen:
        figures = functions[name](args.seed)
        figures["goal"] = GOALS[name]
        results[name] = figures
        print(f"{name}: " + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}),
              flush=True)
    if args.out:
        cio.write_json(args.out, results)
    failed = [name for name in chosen if not results[name]["passed"]]
    print("all goals met" if not failed else f"goals missed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
