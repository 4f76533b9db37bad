"""The logs: their configuration (`config`, for LOGGING), and what no log may keep: the secret of an
emailed link, which rides in its URL's query once."""
import logging
import re
from typing import Any

# `token=...` in a query string: the secret of every emailed link (reset, verification, signup).
_LINK_SECRET = re.compile(r"([?&]token=)[^&#\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the value of every `token` query parameter replaced."""
    return _LINK_SECRET.sub(r"\1[redacted]", text)


class RedactLinkSecrets(logging.Filter):
    """On the access logs (uvicorn's, runserver's): the request line of a link's first GET keeps
    its path and its other parameters, not its token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


_REDACT = RedactLinkSecrets()
ACCESS_LOGGERS = ("uvicorn.access", "django.server")


def redact_access_logs() -> None:
    """Put the filter on the access loggers as the server configured them (sidus.apps runs this).
    Not in LOGGING: configuring uvicorn's logger there replaces its handler, and uvicorn writes an
    access line whenever that logger has one, so `--no-access-log` would log every request."""
    for name in ACCESS_LOGGERS:
        logging.getLogger(name).addFilter(_REDACT)


def config(level: str) -> dict[str, Any]:
    """Django's LOGGING: one plain line per record, on the console, at `level`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's default config gives "django" a console handler of its own (under DEBUG) that
            # the root handler would repeat: every line would print twice.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.db.backends": {"level": "WARNING"},
        },
    }
