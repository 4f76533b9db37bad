"""The test settings: sidus.settings with a fast hasher and in-memory email, on Redis DBs derived
from REDIS_URL: the app takes DB n (cache), n+1 (channels) and n+2 (broker); the tests take n+3 to
n+5 of the same server, so a test run never flushes the cache of a stack running beside it."""
import os
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789")
# Derived once: the workers and servers that the tests start inherit the result (or are handed
# a Redis of their own) and must not move it three DBs further.
if os.environ.get("REDIS_URL_DERIVED_FOR_TESTS") != "1":
    _redis = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    _db = int(_redis.path.strip("/") or 0) + 3
    os.environ["REDIS_URL"] = urlunsplit(_redis._replace(path=f"/{_db}"))
    os.environ["REDIS_URL_DERIVED_FOR_TESTS"] = "1"
    os.environ.pop("CHANNEL_LAYER_URL", None)  # a worker the tests start keeps the one it is handed
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.pop("EMAIL_URL", None)
# User events of test runs go to an exchange of their own: a consumer of a stack beside never sees them.
os.environ.setdefault("EVENTS_EXCHANGE", "sidus.events.tests")

from sidus.settings import *  # noqa: E402,F401,F403

# Hashing a real password costs ~0.2 s here; the tests create hundreds of users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

LOGGING["loggers"]["httpx"] = {"level": "WARNING"}  # noqa: F405
# The Celery worker that tests start in their own process runs no events relay (it would hold
# connections to the test database past the test); the event tests run relays themselves, and
# tests/system/test_events_faults.py starts a real worker with EVENTS_RELAY=true.
EVENTS_RELAY = os.environ.get("EVENTS_RELAY", "false") == "true"
# Nor a webhook sender, for the same reason: the webhook tests run theirs.
WEBHOOKS_SENDER = os.environ.get("WEBHOOKS_SENDER", "false") == "true"
