from typing import Any

from django.core.management.base import BaseCommand

from users import cache


class Command(BaseCommand):
    help = "Empty the user profile cache: every Redis (L2) entry and the memory (L1) of every worker."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = cache.clear_all_users()
        self.stdout.write(self.style.SUCCESS(f"Removed {removed} cached profile(s); told every worker to clear L1."))
