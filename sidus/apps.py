from django.apps import AppConfig


class SidusConfig(AppConfig):
    """The project's own checks (the middleware subclasses); it has no models."""

    name = "sidus"

    def ready(self) -> None:
        from sidus import middleware  # noqa: F401  (registers its system check)
