"""The test settings: sidus.settings on Redis DBs 10-12 of the same server (so a test run never
flushes the cache of a running stack), a fast hasher and in-memory email."""
import os
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789")
_redis = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
os.environ["REDIS_URL"] = urlunsplit(_redis._replace(path="/10"))
os.environ.pop("CHANNEL_LAYER_URL", None)
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.pop("EMAIL_URL", None)

from sidus.settings import *  # noqa: E402,F401,F403

# Hashing a real password costs ~0.45 s here; the tests create hundreds of users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

LOGGING["loggers"]["httpx"] = {"level": "WARNING"}  # noqa: F405
