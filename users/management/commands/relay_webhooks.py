"""`manage.py relay_webhooks`: one webhook sender in the foreground (each Celery worker runs one already)."""
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from users.webhooks.sender import Sender


class Command(BaseCommand):
    help = "Post the webhook deliveries to their endpoints until stopped (Ctrl-C or SIGTERM)."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            Sender().run(stop)
        except KeyboardInterrupt:
            pass
