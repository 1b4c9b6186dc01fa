"""The `Dataset`: train and test arrays every session shares read-only, and batch scaling.

A `Dataset` holds uint8 arrays with the channel axis, `(N, H, W, C)`, and
integer labels. They are read-only: the app loads each dataset once per process
and every student's session shares the same arrays. Scaling to [0, 1] happens
batch by batch (`to_float`), never as a float copy of a whole dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False)
class Dataset:
    """Train and test arrays (uint8, `(N, H, W, C)`), labels, class names and the source that served them."""

    name: str
    title: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    source_text: str
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.x_train = _freeze(self.x_train)
        self.x_test = _freeze(self.x_test)
        self.y_train = _freeze(np.asarray(self.y_train, dtype=np.int64))
        self.y_test = _freeze(np.asarray(self.y_test, dtype=np.int64))
        self.class_names = tuple(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_grayscale(self) -> bool:
        return self.image_shape[-1] == 1

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
                f"shape={self.image_shape}, source={self.source!r})")


def _freeze(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def to_float(x: np.ndarray) -> np.ndarray:
    """Scale a batch of uint8 images to float32 in [0, 1] (min 0, max 255 → (x − 0) / 255)."""
    return np.asarray(x, dtype=np.float32) * np.float32(1.0 / 255.0)


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels → one-hot rows (what categorical cross-entropy expects)."""
    out = np.zeros((len(y), num_classes), dtype=np.float32)
    out[np.arange(len(y)), np.asarray(y, dtype=np.int64)] = 1.0
    return out
