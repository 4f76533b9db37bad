"""`uvicorn sidus.asgi:application`: Django behind the edge, plus the lifespan that runs each
worker's invalidation listener (Django's own ASGI app does not speak lifespan)."""
import gc
import os

from django.core.asgi import get_asgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sidus.settings")
django_application = get_asgi_application()

from sidus.edge import Edge  # noqa: E402  (needs the settings)
from users.edge import ROUTES  # noqa: E402
from users.lifespan import lifespan  # noqa: E402  (needs the apps loaded)

# The edge is the one layer before Django (sidus/edge/__init__.py says what it does): it answers
# the routes of users/edge/profile.py itself when it can, and hands everything else to Django.
application = Edge(django_application, routes=ROUTES, lifespan=lifespan)

# Everything built so far lives as long as the worker: load the URL conf too (views, serializers),
# then move it all out of the garbage collector's sight, so that a full collection scans only what
# requests allocate (its pauses were the invalidation delay's tail: docs/performance.md).
get_resolver().url_patterns
gc.freeze()
# And collect the young generations every 50,000 net allocations instead of every 700: at thousands
# of requests a second the default ran a young collection every few requests and an older one every
# few hundred, each scanning what L1 and the requests in flight hold; they were the warm read's tail
# (its p99 ten times its median, about twice with this: docs/performance.md). Cycles are still
# collected, later; the oldest generation after 100 passes of the middle one.
gc.set_threshold(50_000, 20, 100)
