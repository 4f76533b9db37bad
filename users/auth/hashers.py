"""Argon2id with OWASP's parameters (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane.

Django's own Argon2 hasher with lighter settings than its defaults (100 MiB, 8 lanes): about
as hard to brute-force per guess on a GPU, and cheap enough that registration and login do
not saturate a small server. The algorithm name stays "argon2": Django sees the changed
parameters and rehashes older argon2 hashes at the next login, as it does PBKDF2 ones.
"""
from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
