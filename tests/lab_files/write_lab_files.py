"""Writes the lab files in tests/lab_files/ the way the four labs saved them, with Keras 2 (tf-keras).

Run once, with tf-keras installed (`pip install "tf-keras~=2.21.0"`; it is not needed to run the tests):

    TF_USE_LEGACY_KERAS=1 python tests/lab_files/write_lab_files.py

- lab B: `model.save('cnn_mnist_model.h5')` and `model.save_weights('cnn_mnist_weights.h5')`; Lab B's layout
  (two convolutions, no pooling) with 4 and 8 filters and Dense(16), so the file stays small (the real
  Lab B is 4.7 million parameters, 19 MB);
- lab C: `model.to_json()` into `model_digit.json` and `model.save_weights('model_digit.h5')`; Lab C's real
  architecture (1,199,882 parameters);
- lab D: `fashion_model.save("fashion_model_dropout.h5py")`; Lab D's real architecture (356,234 parameters);
- a Lambda layer in each format, and a model for 32×32 colour images (the wrong shape for MNIST).

Each model trains one epoch on a few thousand images with one-hot labels (as the labs did, with
categorical cross-entropy); `expected.json` holds the test accuracy Keras itself reports for each file,
on the offline MNIST sample's 1,000 test digits or Fashion-MNIST's 10,000 test images.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import tf_keras as keras  # noqa: E402  (Keras 2, as the labs had it)
from tf_keras import layers  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from cnnkit.datasets import readers  # noqa: E402  (numpy only: reads the shipped sample and Debian's files)


def scaled(x):
    return x.astype("float32")[..., None] / 255.0 if x.ndim == 3 else x.astype("float32") / 255.0


def train_and_score(model, data, epochs=1, n_train=4000):
    (x_train, y_train), (x_test, y_test) = data
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    keras.utils.set_random_seed(1)
    model.fit(scaled(x_train[:n_train]), keras.utils.to_categorical(y_train[:n_train], 10), epochs=epochs,
              batch_size=64, verbose=0)
    _, accuracy = model.evaluate(scaled(x_test), keras.utils.to_categorical(y_test, 10), verbose=0)
    return float(accuracy)


def main():
    x_train, y_train, x_test, y_test = readers.read_offline_sample()
    mnist = (x_train[..., 0], y_train), (x_test[..., 0], y_test)
    f_train, f_ytrain, f_test, f_ytest = readers.read_fashion_folder(Path("/usr/share/datasets/fashion-mnist"))
    fashion = (f_train[..., 0], f_ytrain), (f_test[..., 0], f_ytest)
    expected = {}

    keras.utils.set_random_seed(0)
    lab_b = keras.Sequential([
        layers.Conv2D(4, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(16, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    expected["cnn_mnist_model.h5"] = {"dataset": "mnist", "accuracy": train_and_score(lab_b, mnist),
                                      "params": lab_b.count_params()}
    lab_b.save(HERE / "cnn_mnist_model.h5")
    lab_b.save_weights(HERE / "cnn_mnist_weights.h5")

    keras.utils.set_random_seed(0)
    lab_c = keras.Sequential([
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    expected["model_digit.json"] = {"dataset": "mnist", "weights": "model_digit.h5",
                                    "accuracy": train_and_score(lab_c, mnist), "params": lab_c.count_params()}
    (HERE / "model_digit.json").write_text(lab_c.to_json())
    lab_c.save_weights(HERE / "model_digit.h5")

    keras.utils.set_random_seed(0)
    lab_d = keras.Sequential([
        layers.Conv2D(32, kernel_size=(3, 3), activation="linear", padding="same", input_shape=(28, 28, 1)),
        layers.LeakyReLU(alpha=0.1),
        layers.MaxPooling2D((2, 2), padding="same"),
        layers.Dropout(0.25),
        layers.Conv2D(64, (3, 3), activation="linear", padding="same"),
        layers.LeakyReLU(alpha=0.1),
        layers.MaxPooling2D(pool_size=(2, 2), padding="same"),
        layers.Dropout(0.25),
        layers.Conv2D(128, (3, 3), activation="linear", padding="same"),
        layers.LeakyReLU(alpha=0.1),
        layers.MaxPooling2D(pool_size=(2, 2), padding="same"),
        layers.Dropout(0.4),
        layers.Flatten(),
        layers.Dense(128, activation="linear"),
        layers.LeakyReLU(alpha=0.1),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ])
    expected["fashion_model_dropout.h5py"] = {"dataset": "fashion_mnist", "params": lab_d.count_params(),
                                              "accuracy": train_and_score(lab_d, fashion, n_train=6000)}
    # Without the optimizer's state, to keep the file small (the app never reads it: it compiles nothing).
    lab_d.save(HERE / "fashion_model_dropout.h5py", save_format="h5", include_optimizer=False)

    # A Lambda layer (Python code stored in the file) in each format, and a model for the wrong images.
    lam = keras.Sequential([layers.Lambda(lambda x: x * 2.0, input_shape=(28, 28, 1)), layers.Flatten(),
                            layers.Dense(10, activation="softmax")])
    lam.save(HERE / "lambda_model.h5")
    lam.save(HERE / "lambda_model.h5py", save_format="h5")
    (HERE / "lambda_model.json").write_text(lam.to_json())
    lam.save_weights(HERE / "lambda_weights.h5")
    wrong = keras.Sequential([layers.Conv2D(4, (3, 3), activation="relu", input_shape=(32, 32, 3)),
                              layers.Flatten(), layers.Dense(10, activation="softmax")])
    wrong.save(HERE / "cifar_shaped_model.h5")

    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(json.dumps(expected, indent=2))


if __name__ == "__main__":
    main()
