from django.apps import AppConfig


class SidusConfig(AppConfig):
    """The project's own checks (the middleware subclasses, the email backend); it has no models."""

    name = "sidus"

    def ready(self) -> None:
        from sidus import mail, middleware  # noqa: F401  (each registers its system check)
