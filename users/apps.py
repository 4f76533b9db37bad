from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from users import ratelimits  # noqa: F401  (its system check)
        from users import events, signals  # noqa: F401  (their receivers)
        from users.lifespan import new_runtime
        from users.runtime import install
        from users.webhooks import network  # noqa: F401  (its deploy check)

        install(new_runtime())  # a worker's lifespan installs its own
