"""Datasets: the catalogue, the sources tried in order, the readers and a user's own files.

The package's rooms:
- `catalogue.py`: one entry per dataset — name, shape, class names, sources in
  order, its files on the machine with their reader, the hint a page shows, the
  loader the exported code uses;
- `dataset.py`: the `Dataset` (read-only uint8 arrays every session shares) and
  batch scaling;
- `sources.py`: `load(name)` from the first source that can serve it, and
  `describe_sources()` (which would serve each dataset now);
- `readers.py`: readers and probes of files on the machine (Keras's cache,
  Debian's Fashion-MNIST, CIFAR batches, the offline sample's digits);
- `npz.py`: reading a Keras-layout `.npz` without trusting it;
- `uploads.py`: a user's `.npz` or `.zip`, checked, as a `Dataset` (`load_file`).

Callers use the names re-exported here (`datasets.load`, `datasets.Dataset`, …).
"""

from cnnkit.datasets.catalogue import CATALOGUE, CIFAR10, DEFAULT_DATASET, DIGITS, FASHION, DatasetInfo
from cnnkit.datasets.dataset import Dataset, one_hot, to_float
from cnnkit.datasets.sources import describe_sources, downloads_allowed, load, offline_sample
from cnnkit.datasets.uploads import load_file

__all__ = ["CATALOGUE", "CIFAR10", "DEFAULT_DATASET", "DIGITS", "FASHION", "Dataset", "DatasetInfo",
           "describe_sources", "downloads_allowed", "load", "load_file", "offline_sample", "one_hot", "to_float"]
