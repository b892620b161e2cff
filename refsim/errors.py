"""Exception types raised by refsim.

Every error that comes from bad input says *where* (file, node, field), *what was
expected* and *what was found*. Library code never uses ``assert`` for validation.
"""
from __future__ import annotations


class RefsimError(Exception):
    """Base class of every error refsim raises on purpose."""


class ValidationError(RefsimError, ValueError):
    """A value is outside its documented domain.

    Parameters
    ----------
    where : str
        Location of the bad value ("IFParams.comparison", "node 'conv1' field 'weight'").
    expected : str
        What would have been accepted.
    found : object
        What was given.
    """

    def __init__(self, where: str, expected: str, found: object):
        self.where = where
        self.expected = expected
        self.found = found
        super().__init__(f"{where}: expected {expected}, found {found!r}")


class UnknownNameError(RefsimError, KeyError):
    """A name looked up in a registry does not exist; the message lists the valid ones."""

    def __init__(self, kind: str, name: object, valid):
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid names are: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ModelFormatError(RefsimError, ValueError):
    """A model file (or an in-memory graph description) is malformed."""

    def __init__(self, where: str, expected: str, found: object, file: str | None = None):
        self.where = where
        self.expected = expected
        self.found = found
        self.file = file
        prefix = f"{file}: " if file else ""
        super().__init__(f"{prefix}{where}: expected {expected}, found {found}")

    def with_file(self, file: str) -> "ModelFormatError":
        """The same error, saying which file it was found in."""
        return type(self)(self.where, self.expected, self.found, file=str(file))


class ShapeError(ModelFormatError):
    """Shapes of connected nodes do not agree."""


class EncodingError(RefsimError, ValueError):
    """Input data cannot be encoded as asked (out of range, wrong shape)."""
