"""Uploaded model files: a student's `.keras` file loaded safely, or a sentence saying why not.

The evaluation page takes a model trained elsewhere (Colab, a notebook) as a `.keras` upload.
This module checks it is a whole zip with a model configuration inside, then loads it with
Keras's safe mode (no Python code stored in the file runs), under the Keras guard so another
session's `clear_session` cannot interrupt the load. Whether the model fits a dataset is
`evaluation.check_model_fits`.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Any

from cnnkit.errors import ModelFileError


def load_model_file(data: bytes, filename: str = "model.keras") -> Any:
    """Load an uploaded `.keras` file with Keras's safe mode; ModelFileError with a sentence if we can't.

    Safe mode refuses Python code stored in the file (a Lambda layer), since
    running a stranger's code on the lecturer's machine is how files attack.
    """
    name = filename or "the file"
    if not name.lower().endswith(".keras"):
        raise ModelFileError(
            f"{name} is not a .keras file; save your model with model.save('my_model.keras') and upload that file."
        )
    with tempfile.TemporaryDirectory(prefix="cnnkit-upload-") as tmp:
        path = Path(tmp) / "uploaded.keras"
        path.write_bytes(data)
        # Keras reports a damaged archive as "File not found", which would mislead a student.
        if not zipfile.is_zipfile(path):
            raise ModelFileError(
                f"{name} is damaged or is not a Keras model (a .keras file is a zip archive); "
                "save the model again with model.save('my_model.keras') and upload the new file."
            )
        try:
            with zipfile.ZipFile(path) as archive:
                members = set(archive.namelist())
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            members, bad = set(), "?"
        if bad is not None or "config.json" not in members:
            raise ModelFileError(
                f"{name} is damaged or is not a Keras model (it has no model configuration inside); "
                "save the model again with model.save('my_model.keras') and upload the new file."
            )
        import keras

        from cnnkit.keras_guard import guarded

        try:
            with guarded():  # no clear_session of another session in the middle of the load
                return keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as err:  # Keras raises ValueError/TypeError/KeyError/OSError for bad content
            text = str(err)
            if "Lambda" in text or "safe_mode" in text:
                raise ModelFileError(
                    f"{name} contains a Lambda layer (Python code stored in the file), which CNN Lab refuses to "
                    "run for safety; replace it with built-in layers such as Rescaling, save again and re-upload."
                ) from None
            raise ModelFileError(
                f"{name} could not be read as a Keras model ({_first_line(text)}); "
                "it may use custom layers or a newer Keras — save it again with built-in layers and re-upload."
            ) from None


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line if len(line) <= limit else line[: limit - 1] + "…"
