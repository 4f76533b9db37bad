"""The users app's routes at the edge (sidus/edge): what it answers before Django, by Django's rules."""
from users.edge import profile, wellknown

ROUTES = (*profile.ROUTES, *wellknown.ROUTES)

__all__ = ["ROUTES"]
