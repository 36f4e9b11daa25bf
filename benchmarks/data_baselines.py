"""How hard are the built-in datasets? Linear baselines against small convnets.

    .venv/bin/python benchmarks/data_baselines.py [--quick] [--only NAME] [--json PATH]

cluttered_digits: logistic regression on the raw pixels against a small CNN (three
3x3 conv layers, global average pooling). The digit moves over the whole canvas
among distractors, so a linear model on pixels does poorly; a convnet's weight
sharing and pooling do not care where the digit is.

synthetic_audio: logistic regression on the raw waveform, on the magnitude spectrum
(which cannot tell a rising chirp from a falling one: time reversal keeps the
magnitude spectrum), and on a coarse log-spectrogram (time-frequency structure),
against a small Conv1D network on the waveform.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cookbook import data, io


def logistic(train_x, train_y, test_x, test_y):
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.05))
    clf.fit(train_x, train_y)
    return float(clf.score(test_x, test_y))


def spectrum(x):
    mag = np.abs(np.fft.rfft(x[..., 0], axis=1))
    bins = 256
    n = mag.shape[1] // bins * bins
    return np.log1p(mag[:, :n].reshape(len(x), bins, -1).mean(-1))


def spectrogram(x, frame=256, hop=256, bins=32):
    frames = np.lib.stride_tricks.sliding_window_view(x[..., 0], frame, axis=1)[:, ::hop]
    mag = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=-1))[..., : frame // 2]
    mag = mag.reshape(*mag.shape[:2], bins, -1).mean(-1)
    return np.log1p(mag).reshape(len(x), -1)


def small_cnn(input_shape, classes):
    import keras

    conv = keras.layers.Conv2D if len(input_shape) == 3 else keras.layers.Conv1D
    pool = keras.layers.MaxPooling2D if len(input_shape) == 3 else keras.layers.MaxPooling1D
    gap = keras.layers.GlobalAveragePooling2D if len(input_shape) == 3 else keras.layers.GlobalAveragePooling1D
    inputs = keras.Input(input_shape)
    x = inputs
    if len(input_shape) == 2:  # raw audio: a strided front end first (M5-like)
        x = conv(32, 80, strides=4, activation="relu")(x)
        x = pool(4)(x)
    for filters in (32, 64, 64):
        x = conv(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = pool(2 if len(input_shape) == 3 else 4)(x)
    x = gap()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))


def cnn_accuracy(splits, epochs):
    from cookbook.train import fit

    model = small_cnn(splits.train.x.shape[1:], splits.classes)
    history = fit(model, splits, epochs=epochs, batch_size=64, learning_rate=3e-3, verbose=0)
    pred = history.model.predict(splits.test.x, verbose=0)
    return float(np.mean(pred.argmax(-1) == splits.test.y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke test")
    parser.add_argument("--json", help="also write the figures to this JSON file (--only updates its entry)")
    parser.add_argument("--only", choices=("cluttered_digits", "synthetic_audio"), help="one dataset only")
    args = parser.parse_args(argv)
    sizes = (600, 200, 200) if args.quick else (5000, 1000, 1000)
    epochs = 2 if args.quick else 8
    results = {}
    if args.only and args.json and os.path.exists(args.json):
        with open(args.json, encoding="utf-8") as file:
            results = json.load(file)

    start = time.perf_counter()
    flat = lambda split: split.x.reshape(len(split.x), -1)
    if args.only != "synthetic_audio":
        results["cluttered_digits"] = digit_baselines(sizes, epochs, flat)
    if args.only != "cluttered_digits":
        results["synthetic_audio"] = audio_baselines(sizes, epochs, flat)
    results["sizes"] = {"train": sizes[0], "test": sizes[2], "audio_train": max(160, sizes[0] // 2),
                        "audio_test": max(160, sizes[2] // 2), "epochs": epochs}
    results["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(results, indent=2))
    if args.json:
        io.write_json(args.json, results)


def digit_baselines(sizes, epochs, flat):
    digits = data.cluttered_digits(*sizes)
    return {
        "logistic_pixels": logistic(flat(digits.train), digits.train.y, flat(digits.test), digits.test.y),
        "small_cnn": cnn_accuracy(digits, epochs),
        "chance": 0.1,
    }


def audio_baselines(sizes, epochs, flat):
    audio = data.synthetic_audio(*[max(160, n // 2) for n in sizes])
    return {
        "logistic_waveform": logistic(flat(audio.train), audio.train.y, flat(audio.test), audio.test.y),
        "logistic_spectrum": logistic(spectrum(audio.train.x), audio.train.y, spectrum(audio.test.x), audio.test.y),
        "logistic_spectrogram": logistic(
            spectrogram(audio.train.x), audio.train.y, spectrogram(audio.test.x), audio.test.y
        ),
        "small_cnn1d": cnn_accuracy(audio, epochs),
        "chance": 1 / len(data.AUDIO_CLASSES),
    }


if __name__ == "__main__":
    main()
