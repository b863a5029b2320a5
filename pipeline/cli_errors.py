"""Errors that are the user's to fix (bad input, bad configuration): reported without a traceback."""


class UserError(Exception):
    """A problem with the user's input or configuration; the message names the file or key."""
