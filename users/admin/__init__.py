"""The admin of the users app: users (`users`), the outbox and the user events (`events`), the
webhooks (`webhooks`)."""
from users.admin import events, users, webhooks  # noqa: F401  (each registers its model admins)
