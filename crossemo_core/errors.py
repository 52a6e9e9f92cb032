"""Errors a user may see. Each carries a message written for the person who gave the input."""


class CrossemoError(Exception):
    """Base class of every error crossemo raises on purpose."""


class DataError(CrossemoError, ValueError):
    """Input data is missing, malformed, or inconsistent."""


class UnsafePickleError(DataError):
    """A pickle tried to load something other than plain data."""


class CheckpointError(CrossemoError, ValueError):
    """A checkpoint is unreadable or does not fit the data it is used with."""


class TrainingDiverged(CrossemoError, FloatingPointError):
    """A training run's loss became NaN or infinite (a learning rate too high, extreme feature values)."""


class OutputError(CrossemoError):
    """An output file or folder cannot be written (missing permission, no room, a folder where a file goes)."""


def single_line(text: str) -> str:
    """``text`` with its line breaks and other control characters written as escapes (``\\n``, ``\\x1b``), so that
    a message naming a file called ``"a\\nb.mp4"`` still prints as one line and keeps its reason."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)
