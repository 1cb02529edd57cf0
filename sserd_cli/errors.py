"""User-facing errors.

Anything the user can fix (a missing file, a wrong format, an unknown name)
raises :class:`SserdError` with one line that says what is wrong and what to do.
The CLI prints that line and exits with :attr:`SserdError.exit_code`, never a
traceback.
"""


class SserdError(Exception):
    """An error caused by the user's input; the message is shown as is."""

    exit_code = 2


class NotImplementedYet(SserdError):
    """A command that a later release will provide."""
