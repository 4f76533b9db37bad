"""The cache's ledger in PostgreSQL."""

from django.db import models


class UnsentInvalidation(models.Model):
    """A user whose change committed while its writer could not reach Redis (users/cache/unsent.py):
    every worker stops reading them from L2 and sends the invalidation itself. `version` grows with
    each failed send, so that a row is removed only by a send made after its last one."""

    user_id = models.BigIntegerField(primary_key=True)
    version = models.BigIntegerField(default=1)

    class Meta:
        db_table = "user_cache_unsent"
