"""Errors the journal raises; each names the journal (password hidden) and the way out."""


class JournalError(Exception):
    """Base class of the journal's errors."""


class JournalUnavailable(JournalError):
    """The journal's database cannot be reached or written."""


class JournalSchemaError(JournalError):
    """The journal's schema is not one this version can use (e.g. written by a newer runjournal)."""


class RunNotFound(JournalError, LookupError):
    """No run matches the given id or id prefix (or more than one does)."""
