"""The one exception type the CLI turns into a clean one-line error, and how a message quotes a
value."""

import reprlib


class AdaptkitError(Exception):
    """A user-facing error: the message names the file/field and what was expected."""


class SignalInterrupt(KeyboardInterrupt):
    """SIGTERM (or SIGINT) delivered as an exception, so every `finally` and every temp-file
    cleanup runs as it does for Ctrl-C (the CLI installs the handler: `raise_on_signal`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Interrupted(AdaptkitError):
    """A job stopped by a signal, saying what it kept; `resume`: `--resume` continues it. The
    CLI prints it as one line (with the command to continue) and exits 128 + the signal."""

    def __init__(self, message: str, signum: int, resume: bool = False) -> None:
        super().__init__(message)
        self.signum = signum
        self.resume = resume


def signal_of(exc: KeyboardInterrupt) -> int:
    """The signal behind a KeyboardInterrupt: SIGINT unless it is a SignalInterrupt."""
    import signal

    return getattr(exc, "signum", int(signal.SIGINT))


def signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def raise_on_signal(signum: int, frame: object) -> None:
    """A signal handler: raise SignalInterrupt in the main thread."""
    raise SignalInterrupt(signum)


_SHORT = reprlib.Repr()  # attributes, not keywords: Python 3.11's Repr takes none
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 60, 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4


def short_repr(value: object) -> str:
    """repr() bounded in size and depth, for quoting a user's value in an error: a huge or
    self-referencing value (a YAML alias bomb) prints as a few dozen characters."""
    return _SHORT.repr(value)
