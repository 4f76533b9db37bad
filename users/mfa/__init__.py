"""The mechanics of second factors, each on a well-kept library: authenticator apps (pyotp, with
their QR codes by segno), recovery codes, passkeys (py_webauthn), and the key that keeps their
secrets (cryptography's Fernet). What a factor means to an account, its events and its limits,
is users/accounts/factors.py's."""
