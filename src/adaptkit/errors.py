"""The one exception type the CLI turns into a clean one-line error, and how a message quotes a
value."""

import reprlib


class AdaptkitError(Exception):
    """A user-facing error: the message names the file/field and what was expected."""


_SHORT = reprlib.Repr()  # attributes, not keywords: Python 3.11's Repr takes none
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 60, 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4


def short_repr(value: object) -> str:
    """repr() bounded in size and depth, for quoting a user's value in an error: a huge or
    self-referencing value (a YAML alias bomb) prints as a few dozen characters."""
    return _SHORT.repr(value)
