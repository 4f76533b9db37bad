"""The users app's routes at the edge (sidus/edge): what it answers before Django, by Django's rules."""
from users.edge.profile import ROUTES

__all__ = ["ROUTES"]
