"""The names of the profile's URLs (Django's URLconf, DRF's router), for the edge and the loader
that answer on them."""
BASENAME = "user"  # the router's: its routes are named "user-detail", "user-me", ...
PROFILE = f"{BASENAME}-detail"  # /users/{id}/
ME = f"{BASENAME}-me"  # /users/me/
