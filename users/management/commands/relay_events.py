"""`manage.py relay_events`: one relay in the foreground (each Celery worker runs one already)."""
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from users.events.relay import Relay


class Command(BaseCommand):
    help = "Publish committed user events to the broker until stopped (Ctrl-C or SIGTERM)."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            Relay().run(stop)
        except KeyboardInterrupt:
            pass
