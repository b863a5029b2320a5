"""Log and error text safe to show: the query strings of URLs (signatures, SAS tokens) removed.

Its own module, without the HTTP stack, so that every job's command line can use it without importing
``requests`` (0.16 s of a job's start).
"""

from __future__ import annotations

import logging
import re


def redact(text: str) -> str:
    """``text`` with the query strings of its URLs (signatures, SAS tokens) replaced by ``?...``: safe to log."""
    return re.sub(r"((?:https?|s3)://[^\s?'\"]*)\?[^\s'\"]*", r"\1?...", text)


class RedactingFormatter(logging.Formatter):
    """A log formatter that :func:`redact` s every line, whoever logged it (GDAL's messages name the URLs
    it reads, signed ones included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
