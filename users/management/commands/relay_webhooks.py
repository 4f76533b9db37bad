"""`manage.py relay_webhooks`: one webhook sender in the foreground (each Celery worker runs one already)."""
from typing import Any

from django.core.management.base import BaseCommand

from users.management.foreground import run_until_stopped
from users.webhooks.sender import Sender


class Command(BaseCommand):
    help = "Post the webhook deliveries to their endpoints until stopped (Ctrl-C or SIGTERM)."

    def handle(self, *args: Any, **options: Any) -> None:
        run_until_stopped(Sender().run)
