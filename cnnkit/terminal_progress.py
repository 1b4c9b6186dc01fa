"""The command line's progress bar for `python -m cnnkit train`: it draws `cnnkit.progress` snapshots on a stream."""

from __future__ import annotations

from cnnkit.progress import JobSnapshot, describe_progress


class TerminalProgress:
    """The command line's progress bar: redrawn in place on a terminal, one line per epoch otherwise."""

    def __init__(self, stream, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._epochs_shown = 0
        self._last = ""

    def __call__(self, snap: JobSnapshot) -> None:
        text = describe_progress(snap)
        for e in range(self._epochs_shown, len(snap.history.get("loss", []))):
            self._clear()
            self.stream.write(f"epoch {e + 1}/{snap.epochs}: " + "  ".join(
                f"{k} {v[e]:.4f}" for k, v in snap.history.items() if len(v) > e) + "\n")
            self._epochs_shown = e + 1
        if self.tty and snap.active:
            filled = int(round(snap.job_fraction * self.width))
            line = f"[{'#' * filled}{'.' * (self.width - filled)}] {text.epoch} | {text.job}"
            self._clear()
            self.stream.write(line)
            self._last = line
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self._last:
            self.stream.write("\r" + " " * len(self._last) + "\r")
            self._last = ""

    def close(self, snap: JobSnapshot) -> None:
        self(snap)
        self._clear()
        self.stream.write(snap.message + "\n")
        self.stream.flush()
