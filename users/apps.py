from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from users import events, ratelimits, signals  # noqa: F401  (receivers and the rate-limit check)
