"""A plain text file to replay for ``Get-Content`` (simulator/replay.py): a server's web.config as it is."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from simulator.clixml import MAX_CAPTURE_BYTES, CaptureError

TEXT_CMDLET = "get-content"


@dataclasses.dataclass(frozen=True)
class TextCapture:
    """A plain text file replayed as ``Get-Content -Raw`` answers it: one string."""

    path: Path
    text: str

    def to_wire(self) -> list[Any]:
        return [self.text]

    def __len__(self) -> int:
        return 1


def load_text_capture(path: Path) -> TextCapture:
    """Read a text file to replay (UTF-8, with or without a byte order mark, as Windows writes it)."""
    try:
        if not path.is_file():
            raise CaptureError(f"{path}: not a file")
        size = path.stat().st_size
        if size > MAX_CAPTURE_BYTES:
            raise CaptureError(f"{path}: {size} bytes, more than the {MAX_CAPTURE_BYTES} a capture may have")
        data = path.read_bytes()
    except OSError as err:
        raise CaptureError(f"{path}: cannot read the file ({err.strerror or err})") from None
    try:
        return TextCapture(path, data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise CaptureError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
