"""The package's error classes: every known failure derives from :class:`SardemError`.

The command line prints a :class:`SardemError` as one line naming the file or key and exits
with status 2 (``--debug`` shows the traceback); anything else is a bug and keeps its traceback.
"""


class SardemError(Exception):
    """A known failure: bad input, a bad product, an unreachable service. The message names the file or key."""


class UserError(SardemError):
    """A problem with the user's input or configuration; the message names the file or key."""


class DatasetError(SardemError, ValueError):
    """The dataset cannot be built (the message says why and names the file)."""
