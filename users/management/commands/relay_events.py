"""`manage.py relay_events`: one relay in the foreground (each Celery worker runs one already)."""
from typing import Any

from django.core.management.base import BaseCommand

from users.events.relay import Relay
from users.management.foreground import run_until_stopped


class Command(BaseCommand):
    help = "Publish committed user events to the broker until stopped (Ctrl-C or SIGTERM)."

    def handle(self, *args: Any, **options: Any) -> None:
        run_until_stopped(Relay().run)
