"""Which fields of a profile are written, and by whom: one set for the API, the edge and the flows."""
# The address is not among them: it changes with the password and the new address's consent
# (`accounts.email_change_request`), never with a token alone.
UPDATABLE_FIELDS = frozenset({"username", "first_name", "last_name", "bio"})
# What no other row, no email and no constraint depends on: the edge's lean PATCH writes these.
TEXT_FIELDS = frozenset({"first_name", "last_name", "bio"})
