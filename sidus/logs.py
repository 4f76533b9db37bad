"""What no log may keep: the secret of an emailed link, which rides in its URL's query once."""
import logging
import re

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
