"""Every setting of sidus, read from the environment with defaults that work on a laptop.

Secrets have no production default: with DJANGO_DEBUG=false, DJANGO_SECRET_KEY must be set.
"""
import warnings
from datetime import timedelta
from pathlib import Path

import environ

from sidus import logs, redis_wiring

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


# --- Core -------------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
_LOCAL_SECRET_KEY = "django-insecure-local-development-only-key-0123456789"
SECRET_KEY = env("DJANGO_SECRET_KEY", default=_LOCAL_SECRET_KEY if DEBUG else environ.Env.NOTSET)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# A profile is well under 4 KiB: anything far larger is refused with a 413 before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024)

INSTALLED_APPS = [
    "sidus.apps.AdminConfig", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "rest_framework", "drf_spectacular",
    "drf_spectacular_sidecar", "channels", "sidus.apps.SidusConfig", "users",
]

# Django's usual stack, as subclasses that cost the API no thread hop (sidus/http/middleware.py): the
# session, CSRF, auth and messages middleware run for /admin/ only, static files under STATIC_URL.
MIDDLEWARE = [
    "users.api.middleware.ActorMiddleware",  # the events a request records are the user's
    "sidus.http.middleware.SecurityMiddleware",
    "sidus.http.middleware.StaticFilesMiddleware",
    "sidus.http.middleware.SessionMiddleware",
    "sidus.http.middleware.CommonMiddleware",
    "sidus.http.middleware.CsrfViewMiddleware",
    "sidus.http.middleware.AuthenticationMiddleware",
    "sidus.http.middleware.MessageMiddleware",
    "sidus.http.middleware.XFrameOptionsMiddleware",
]
# Django's deploy checks look for its own class names; sidus.W001 checks for these subclasses.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

ROOT_URLCONF = "sidus.urls"
ASGI_APPLICATION = "sidus.asgi.application"
AUTH_USER_MODEL = "users.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                       "django.contrib.auth.context_processors.auth",
                                       "django.contrib.messages.context_processors.messages"]},
}]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve straight from the apps' static folders too, so a checkout works without collectstatic.
WHITENOISE_USE_FINDERS = True
# whitenoise streams with a sync iterator, which Django warns of under ASGI: only the admin and Swagger use it.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")

# --- Database ---------------------------------------------------------------------------------
# Under ASGI every request runs in a new thread: without a pool each one would open a connection.
# The pool needs CONN_MAX_AGE = 0; keep workers x DATABASE_POOL_MAX_SIZE under max_connections.
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/sidus")}
DATABASES["default"]["CONN_MAX_AGE"] = 0
if env.bool("DATABASE_POOL", default=True):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
    }
# Behind PgBouncer in transaction mode (docs/scaling.md) a server connection is the client's for
# one transaction only: no server-side cursors and no prepared statements (Django makes none; the
# event loop's pool, users/loop_db.py, would after five runs of a query).
DATABASE_PGBOUNCER = env.bool("DATABASE_PGBOUNCER", default=False)
if DATABASE_PGBOUNCER:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

# --- Redis: cache, channel layer, broker, each on its own DB number ---------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CHANNEL_LAYER_URL = env("CHANNEL_LAYER_URL", default=redis_wiring.redis_url_with_db(REDIS_URL, 1))

# Redis Sentinel (docs/scaling.md): REDIS_SENTINELS ("host:port,host:port") name the sentinels
# that know where the master called REDIS_SENTINEL_MASTER is; the URLs then give only DB numbers
# and a password, their host being ignored. The cache, the channel layer, the broker, the rate
# limits and the cache's own clients (users/cache/connection.py) all follow the master.
REDIS_SENTINELS = redis_wiring.sentinels(env.list("REDIS_SENTINELS", default=[]))
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", default="sidus")

CACHES = {"default": redis_wiring.cache(REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_MASTER)}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "users.cache.layer.RedisChannelLayer",  # channels-redis's, quiet when Redis breaks
        "CONFIG": {
            # channels-redis blocks 5 s per receive: the socket timeout must be a little longer, and
            # short enough that a hung Redis is noticed (and L1 switched off) within seconds.
            "hosts": [{**redis_wiring.channel_layer_host(CHANNEL_LAYER_URL, REDIS_SENTINELS, REDIS_SENTINEL_MASTER),
                       "socket_timeout": 7, "socket_connect_timeout": 1}],
            "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=1000),  # then dropped: the listener sees the gap
            "expiry": 60,
            "group_expiry": 86400,
        },
    }
}

# Per-worker L1 and Redis L2 for the public profile (users/cache/, docs/cache.md).
USER_CACHE_L1_MAX_ENTRIES = env.int("USER_CACHE_L1_MAX_ENTRIES", default=10_000)
USER_CACHE_L1_TTL = env.float("USER_CACHE_L1_TTL", default=60.0)
# L1 answers only while this worker has proof, at most this old (s), that it applied every
# invalidation sent before: its probe, sent to itself every quarter of it, came back with no message missing.
USER_CACHE_MAX_STALENESS = env.float("USER_CACHE_MAX_STALENESS", default=1.0)
USER_CACHE_L2_TTL = env.int("USER_CACHE_L2_TTL", default=300)
# Each worker's PostgreSQL connections on its event loop (users/loop_db.py: the miss loader and the
# lean profile update), besides Django's own pool.
LOOP_DB_POOL_SIZE = env.int("LOOP_DB_POOL_SIZE", default=4)

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=redis_wiring.celery_broker(
    redis_wiring.redis_url_with_db(REDIS_URL, 2), REDIS_SENTINELS))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A publish must fail fast when the broker is away; the outbox sends the email later.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2, "max_retries": 0}
if CELERY_BROKER_URL.startswith("sentinel://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
CELERY_TASK_PUBLISH_RETRY = False
EMAIL_OUTBOX_DRAIN_INTERVAL = env.float("EMAIL_OUTBOX_DRAIN_INTERVAL", default=30.0)
EMAIL_OUTBOX_DRAIN_GRACE = env.float("EMAIL_OUTBOX_DRAIN_GRACE", default=10.0)

# --- Email ------------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
if EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend":  # noqa: F821  (set by the line above)
    EMAIL_BACKEND = "sidus.mail.ReadableConsoleBackend"  # each email as a person reads it, at INFO
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="sidus <noreply@sidus.local>")
# Where the links in emails point: sidus's own pages (users/pages/) by default, else your front end's.
# WEB_PORT is the port the API answers on from your machine (the Procfile's uvicorn, compose's
# proxy): the links follow it, in the server and in the worker alike.
FRONTEND_URL = env("FRONTEND_URL", default=f"http://localhost:{env.int('WEB_PORT', default=8000)}")
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)  # also verification and signup links
# Signup answers 202 whether or not the address has an account; the account is created by the link
# emailed to a new address, and the owner of a taken one gets a notice (docs/accounts.md).
SIGNUP_PREVENT_ENUMERATION = env.bool("SIGNUP_PREVENT_ENUMERATION", default=False)
# A change of address waits for the link sent to the new one (seconds); the old one can put itself
# back for days after, and that link, like a login alert's, ends every session (docs/accounts.md).
EMAIL_CHANGE_TIMEOUT = env.int("EMAIL_CHANGE_TIMEOUT", default=86400)
EMAIL_CHANGE_REVERT_DAYS = env.int("EMAIL_CHANGE_REVERT_DAYS", default=7)  # also the secure-account link
# A login from a device and network the account has not logged in from in 90 days emails its owner.
LOGIN_ALERTS = env.bool("LOGIN_ALERTS", default=True)

# --- Passwords --------------------------------------------------------------------------------
# Argon2id (OWASP's parameters) first; the others verify older hashes, rehashed at the next login.
PASSWORD_HASHERS = ["users.auth.hashers.Argon2idPasswordHasher", *(f"django.contrib.auth.hashers.{name}PasswordHasher"
                                                                   for name in ("PBKDF2", "PBKDF2SHA1", "Scrypt"))]
AUTH_PASSWORD_VALIDATORS = [{"NAME": f"django.contrib.auth.password_validation.{name}"} for name in (
    "UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
    "NumericPasswordValidator")]
AUTHENTICATION_BACKENDS = ["users.auth.backends.RateLimitedModelBackend"]

# --- Second factors (users/mfa/, docs/accounts.md) ------------------------------------------------
# The Fernet key (32 url-safe base64 bytes) of authenticator apps' secrets at rest; by default one derived
# from SECRET_KEY (`check --deploy` warns). MFA_REQUIRED_FOR_STAFF: staff set a factor up before the admin.
MFA_ENCRYPTION_KEY = env("MFA_ENCRYPTION_KEY", default="")
MFA_REQUIRED_FOR_STAFF = env.bool("MFA_REQUIRED_FOR_STAFF", default=False)
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", default="sidus")  # the name an authenticator app shows
# Passkeys: the site they are bound to (a domain, no port) and the origins allowed to use them.
WEBAUTHN_RP_ID = env("WEBAUTHN_RP_ID", default="localhost")
WEBAUTHN_RP_NAME = env("WEBAUTHN_RP_NAME", default="sidus")
WEBAUTHN_ORIGINS = env.list("WEBAUTHN_ORIGINS", default=[FRONTEND_URL])

# --- Rate limits (users/ratelimits.py): django-allauth's syntax and defaults ----------------------
# "<amount>/<[n]s|m|h|d>/<ip|user|key>", several separated by commas; counters live in Redis and
# the limits fail open while it is away. Behind proxies, TRUSTED_PROXY_COUNT says how many
# X-Forwarded-For entries (from the right) were appended by proxies of ours.
RATE_LIMITS_ENABLED = env.bool("RATE_LIMITS_ENABLED", default=True)
RATE_LIMITS = {
    "login_failed": env("RATE_LIMIT_LOGIN_FAILED", default="10/m/ip,5/5m/key"),
    "login": env("RATE_LIMIT_LOGIN", default="30/m/ip"),
    "signup": env("RATE_LIMIT_SIGNUP", default="20/m/ip"),
    "signup_confirm": env("RATE_LIMIT_SIGNUP_CONFIRM", default="20/m/ip"),
    "refresh": env("RATE_LIMIT_REFRESH", default="60/m/ip"),
    "update": env("RATE_LIMIT_UPDATE", default="30/m/user"),
    "password_change": env("RATE_LIMIT_PASSWORD_CHANGE", default="5/m/user"),
    "password_reset": env("RATE_LIMIT_PASSWORD_RESET", default="20/m/ip,5/m/key"),
    "password_reset_confirm": env("RATE_LIMIT_PASSWORD_RESET_CONFIRM", default="20/m/ip"),
    "email_verify": env("RATE_LIMIT_EMAIL_VERIFY", default="20/m/ip"),
    "email_verify_resend": env("RATE_LIMIT_EMAIL_VERIFY_RESEND", default="1/3m/user"),
    "account_delete": env("RATE_LIMIT_ACCOUNT_DELETE", default="5/m/user"),
    "sessions": env("RATE_LIMIT_SESSIONS", default="60/m/user"),
    "factors": env("RATE_LIMIT_FACTORS", default="20/m/user"),  # setting up and removing second factors
    # Per recipient address, the emails anyone can make sidus send to it (signup notices and links,
    # reset and verification links): past this the outbox skips them (users/mail/outbox.py).
    "email_to_address": env("RATE_LIMIT_EMAIL_TO_ADDRESS", default="3/h/key,10/d/key"),
    "email_change": env("RATE_LIMIT_EMAIL_CHANGE", default="5/h/user"),
    # The links that take an account back: confirm or revert a change of address, secure the account.
    "account_link": env("RATE_LIMIT_ACCOUNT_LINK", default="20/m/ip"),
    # Wrong second-factor codes and assertions, per client and per account ("key"), counted on failure.
    "mfa": env("RATE_LIMIT_MFA", default="20/m/ip,5/5m/key"),
}
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
RATELIMIT_USE_CACHE = "default"

# --- REST framework, JWT, OpenAPI -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["users.auth.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PARSER_CLASSES": ["sidus.http.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "sidus.http.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "sidus.http.exception_handler.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Tokens are signed with a key pair kept in PostgreSQL and published at /.well-known/jwks.json
# (users/auth/keys.py: EdDSA, or ES256), or with SIGNING_KEY (HS256): then only sidus can verify them.
JWT_ALGORITHM = env("JWT_ALGORITHM", default="EdDSA")
JWT_KEYS_ENCRYPTION_KEY = env("JWT_KEYS_ENCRYPTION_KEY", default="")  # Fernet, as MFA_ENCRYPTION_KEY
# Or the keys from a secret store: PKCS#8 PEMs, comma-separated, the first signing (nothing kept in PostgreSQL).
JWT_SIGNING_KEYS = env.list("JWT_SIGNING_KEYS", default=[])
# The services that may introspect tokens (RFC 7662), "id:secret,id:secret", with HTTP Basic.
INTROSPECTION_CLIENTS = dict(pair.split(":", 1) for pair in env.list("INTROSPECTION_CLIENTS", default=[]))
SIMPLE_JWT = {
    "ALGORITHM": JWT_ALGORITHM, "ISSUER": env("JWT_ISSUER", default=FRONTEND_URL),
    "AUDIENCE": env("JWT_AUDIENCE", default=None), "USER_ID_CLAIM": "sub",
    "AUTH_TOKEN_CLASSES": ("users.auth.signing.AccessToken",),
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    # Rotation is ours: a refresh token works once, as its session's row says (users/accounts/).
    "UPDATE_LAST_LOGIN": False,
    "USER_AUTHENTICATION_RULE": "users.auth.authentication.user_can_authenticate",
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "sidus",
    "DESCRIPTION": "User service: registration, public profiles, owner-only updates.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],  # the schema is public: a stale Bearer token must not make it a 401
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sidus.http.openapi.strict_request_bodies",
        "users.api.examples.in_story_order",
    ],
}

# --- HTTPS (switch on behind TLS; off for the local stack and the tests) ----------------------
if env.bool("DJANGO_HTTPS", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)
LOGGING = logs.config(env("DJANGO_LOG_LEVEL", default="INFO"))  # sidus/logs.py

# --- User events on the broker (users/events) ---------------------------------------------------
EVENTS_BROKER_URL = env("EVENTS_BROKER_URL", default="amqp://guest:guest@127.0.0.1:5672//")
EVENTS_EXCHANGE = env("EVENTS_EXCHANGE", default="sidus.events")
EVENTS_SOURCE = env("EVENTS_SOURCE", default="sidus")
EVENTS_RELAY = env.bool("EVENTS_RELAY", default=True)  # a relay in each Celery worker
EVENTS_RELAY_BATCH = env.int("EVENTS_RELAY_BATCH", default=1000)
EVENTS_RELAY_POLL_INTERVAL = env.float("EVENTS_RELAY_POLL_INTERVAL", default=1.0)
EVENTS_BROKER_TIMEOUT = env.float("EVENTS_BROKER_TIMEOUT", default=5.0)
EVENTS_MAX_ATTEMPTS = env.int("EVENTS_MAX_ATTEMPTS", default=5)

# --- Webhooks (users/webhooks/, docs/events.md) ----------------------------------------------------
# Endpoints are https only, and only reach public addresses, but for these: http for the hosts of
# WEBHOOKS_ALLOW_HOSTS; any address with WEBHOOKS_ALLOW_PRIVATE (a receiver in your own network).
WEBHOOKS_ALLOW_HOSTS = env.list("WEBHOOKS_ALLOW_HOSTS", default=[])
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
WEBHOOKS_SENDER = env.bool("WEBHOOKS_SENDER", default=True)  # a sender in each Celery worker
WEBHOOKS_CONCURRENCY = env.int("WEBHOOKS_CONCURRENCY", default=32)  # deliveries in flight per endpoint and sender
# Seconds before each retry (Standard Webhooks' schedule); an endpoint failing this long is disabled.
WEBHOOKS_RETRY_SCHEDULE = env.list("WEBHOOKS_RETRY_SCHEDULE", cast=float,
                                   default=[5, 300, 1800, 7200, 18000, 36000, 36000])
WEBHOOKS_DISABLE_AFTER = env.int("WEBHOOKS_DISABLE_AFTER", default=5 * 86400)
ADMINS = [("", address) for address in env.list("DJANGO_ADMINS", default=[])]  # told when one is disabled
