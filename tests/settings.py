"""The test settings: sidus.settings with its own Redis DBs, a fast hasher and in-memory email."""
import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")

from sidus.settings import *  # noqa: E402,F401,F403

# Hashing a real password costs ~0.45 s here; the tests create hundreds of users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

LOGGING["loggers"]["httpx"] = {"level": "WARNING"}  # noqa: F405
