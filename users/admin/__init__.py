"""The admin of the users app: users (`users`), the outbox and the user events (`events`)."""
from users.admin import events, users  # noqa: F401  (each registers its model admins)
