from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from users.auth.keys import ASYMMETRIC, key_rotate, keys_prune
from users.models import SigningKey


class Command(BaseCommand):
    help = ("The keys that sign the tokens: `rotate` adds one that signs once every worker knows it, "
            "`list` shows them, `prune` deletes those whose every token has expired.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["rotate", "list", "prune"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if settings.JWT_ALGORITHM not in ASYMMETRIC:
            raise CommandError(f"JWT_ALGORITHM is {settings.JWT_ALGORITHM}: the one key is the shared secret.")
        if settings.JWT_SIGNING_KEYS:
            raise CommandError("The keys come from JWT_SIGNING_KEYS: rotate them in your secret store (a new PEM "
                               "first, the old one after it until its tokens have expired).")
        if action == "rotate":
            key = key_rotate()
            self.stdout.write(self.style.SUCCESS(f"New key {key.kid}: published now, signs from "
                                                 f"{key.signs_from.isoformat()}."))
        elif action == "prune":
            self.stdout.write(self.style.SUCCESS(f"Deleted {keys_prune()} expired key(s)."))
        else:
            now, signing = timezone.now(), None
            for key in SigningKey.objects.filter(algorithm=settings.JWT_ALGORITHM):
                state = "waits" if key.signs_from > now else "verifies" if signing else "signs"
                signing = signing or (key.signs_from <= now and key)
                self.stdout.write(f"{key.kid}  {key.algorithm}  created {key.created_at.isoformat()}  "
                                  f"signs from {key.signs_from.isoformat()}  {state}")
