"""The one exception type the CLI turns into a clean one-line error."""


class AdaptkitError(Exception):
    """A user-facing error: the message names the file/field and what was expected."""
