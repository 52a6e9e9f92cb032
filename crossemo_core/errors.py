"""Errors a user may see. Each carries a message written for the person who gave the input."""


class CrossemoError(Exception):
    """Base class of every error crossemo raises on purpose."""


class DataError(CrossemoError, ValueError):
    """Input data is missing, malformed, or inconsistent."""


class UnsafePickleError(DataError):
    """A pickle tried to load something other than plain data."""


class CheckpointError(CrossemoError, ValueError):
    """A checkpoint is unreadable or does not fit the data it is used with."""


class OutputError(CrossemoError):
    """An output file or folder cannot be written (missing permission, no room, a folder where a file goes)."""
