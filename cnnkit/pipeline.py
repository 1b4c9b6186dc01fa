"""The batches a model trains on: the one piece of the data pipeline that needs Keras.

`Batches` and `shift_and_turn` are copied verbatim into the exported training script
(`cnnkit.codegen` reads them from this file's source), as is
`cnnkit.training.class_balanced_order`, so CNN Lab and the script make the same
batches in the same order. Keep them free of cnnkit names and readable on their own.
Importing this module imports Keras: `cnnkit.training` imports it only when a job runs.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def shift_and_turn(images, rng):
    """Move each image by up to 10 % of its size and turn it by up to 10°, filling the edges with black.

    The random amounts come from `rng` (a numpy Generator), so the same seed gives the same images.
    """
    n, h, w = images.shape[:3]
    dx, dy = rng.uniform(-0.1, 0.1, n) * w, rng.uniform(-0.1, 0.1, n) * h
    turn = np.deg2rad(rng.uniform(-10, 10, n))
    cos, sin = np.cos(turn), np.sin(turn)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # For every output pixel (x, y), where to read the input: turn about the centre, then shift.
    transforms = np.stack([cos, -sin, cx - cos * (cx + dx) + sin * (cy + dy),
                           sin, cos, cy - sin * (cx + dx) - cos * (cy + dy),
                           np.zeros(n), np.zeros(n)], axis=1).astype("float32")
    moved = keras.ops.image.affine_transform(images, transforms, interpolation="bilinear", fill_mode="constant")
    return keras.ops.convert_to_numpy(moved)


class Batches(keras.utils.PyDataset):
    """Batches of (images scaled to [0, 1], labels) over some of the images, picked by index.

    With `shuffle`, every epoch visits the images in a new order drawn from (seed, epoch); with
    `augment`, every batch is shifted and turned by amounts drawn from (seed, epoch, batch). The
    images stay bytes (uint8) until a batch is made, so no float copy of the dataset is ever held.
    """

    def __init__(self, x, y, indices, batch_size, num_classes, one_hot=False, shuffle=False, seed=0,
                 augment=False):
        super().__init__()
        self.x, self.y, self.indices, self.batch_size = x, y, np.asarray(indices), int(batch_size)
        self.num_classes, self.one_hot, self.shuffle, self.seed, self.augment = (
            num_classes, one_hot, shuffle, seed, augment)
        self.epoch = 0
        self._order = (None, self.indices)

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1

    def order(self):
        """The indices in this epoch's order."""
        if self.shuffle and self._order[0] != self.epoch:
            self._order = (self.epoch, np.random.default_rng([self.seed, self.epoch]).permutation(self.indices))
        return self._order[1]

    def __getitem__(self, i):
        ix = self.order()[i * self.batch_size:(i + 1) * self.batch_size]
        images = self.x[ix].astype("float32") / 255
        if self.augment:
            images = shift_and_turn(images, np.random.default_rng([self.seed, self.epoch, i]))
        labels = self.y[ix].astype("int64")
        if self.one_hot:
            labels = np.eye(self.num_classes, dtype="float32")[labels]
        return images, labels
