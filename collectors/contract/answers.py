"""What a cmdlet answers, and the shape a collector expects of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ShapeError(ValueError):
    """An answer did not have the shape a collector relies on."""


@dataclass(frozen=True)
class Field:
    """One property a collector reads, with the plain type it must have."""

    name: str
    kind: str = "any"  # str | bool | int | float | datetime | list | bytes | any
    required: bool = True  # the property must be present on the object
    nullable: bool = False  # a present property may be null


@dataclass(frozen=True)
class Shape:
    """What a collector expects each output object of one cmdlet to look like (applied by the source)."""

    cmdlet: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    # Each output object is the text of a file (``Get-Content -Raw``), handed over as {"Text": ...}.
    file_text: bool = False
    # Pipe the output through ``Select-Object -Property <the fields>``: for objects whose type table
    # sends less than a reader needs (an X509Certificate2 travels as RawData only). A collector using
    # it declares Select-Object on that endpoint too.
    select: bool = False

    @property
    def selected(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass(frozen=True)
class ErrorRecordInfo:
    """The parts of a PowerShell ErrorRecord a collector may act on."""

    fully_qualified_error_id: str
    category: str
    message: str

    @property
    def error_id(self) -> str:
        """The id without the command suffix: 'PathNotFound,Microsoft...GetItemCommand' -> 'PathNotFound'."""
        return self.fully_qualified_error_id.split(",", 1)[0]


@dataclass
class CmdletAnswer:
    objects: list[dict[str, Any]]
    errors: list[ErrorRecordInfo] = field(default_factory=list)

    def error_ids(self) -> set[str]:
        return {e.error_id for e in self.errors}
