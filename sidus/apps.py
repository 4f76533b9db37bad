from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig

from sidus.logs import redact_access_logs


class SidusConfig(AppConfig):
    """The project's own checks (the middleware subclasses, the email backend) and the access logs'
    redaction; it has no models."""

    name = "sidus"

    def ready(self) -> None:
        from sidus import mail  # noqa: F401  (its system check)
        from sidus.http import middleware  # noqa: F401  (its system check)

        redact_access_logs()


class AdminConfig(DjangoAdminConfig):
    """Django's admin, with a site whose login asks for the second factor (sidus/admin.py)."""

    default_site = "sidus.admin.AdminSite"
