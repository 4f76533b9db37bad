"""Any saved or deleted user (API, admin, shell) is forgotten by every cache once the change
commits; every failed login (API or admin) counts against the failed-login rate limit."""
from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from users import accounts, cache, ratelimits
from users.auth.tokens import client_of
from users.models import User


@receiver(post_save, sender=User, dispatch_uid="users.invalidate_on_save")
@receiver(post_delete, sender=User, dispatch_uid="users.invalidate_on_delete")
def invalidate_user_cache(sender: type, instance: User, created: bool = False, **kwargs: Any) -> None:
    if created:
        return  # a new id was never served, so no cache holds it
    # post_save fires before COMMIT: a reader in between would cache the old row again.
    transaction.on_commit(lambda: cache.invalidate_users([instance.pk]), robust=True)


@receiver(user_login_failed, dispatch_uid="users.count_failed_login")
def count_failed_login(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    if request is not None:
        ratelimits.login_failed(request, credentials.get("username"))
        accounts.login_failed(username=credentials.get("username"), **client_of(request))
