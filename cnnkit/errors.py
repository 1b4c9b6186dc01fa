"""Errors a user can cause, each with a message written for a student.

Pages show `str(err)` with `st.error`; the command line prints it and exits 2.
Bugs are not UserErrors: they still raise.
"""


class UserError(Exception):
    """Something the user did or gave that we cannot use; the message says what to do."""


class DatasetError(UserError):
    """A dataset cannot be loaded, or an uploaded file is not a usable dataset."""


class SpecError(UserError):
    """A model specification is invalid or cannot be built."""


class TrainingError(UserError):
    """Training settings are unusable, or training could not go on."""


class RunError(UserError):
    """A saved run is missing, incomplete or corrupt."""


class ModelFileError(UserError):
    """An uploaded model file cannot be used with this dataset."""


class DrawingError(UserError):
    """A drawing or image cannot be turned into a model input."""
