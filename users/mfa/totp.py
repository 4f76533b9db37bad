"""Authenticator apps (RFC 6238) with pyotp: a code is good for its 30-second step and one step
either way (clocks drift), and only once (`step_of` gives its step: the caller keeps the last one
used and refuses any step not after it)."""
import time

import pyotp
import segno
from django.conf import settings

DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def provisioning(secret: str, *, account: str) -> tuple[str, str]:
    """The otpauth:// URI an app reads, and the same as a QR code in SVG (segno)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=settings.MFA_TOTP_ISSUER)
    return uri, segno.make(uri, error="m").svg_inline(scale=4)


def step_of(secret: str, code: str, *, after: int | None = None, at: float | None = None) -> int | None:
    """The time step whose code `code` is, within DRIFT_STEPS of now (or of the time `at`) and later
    than `after` (the step of the last code this app gave), or None."""
    totp = pyotp.TOTP(secret)
    if not (isinstance(code, str) and len(code) == totp.digits and code.isascii() and code.isdigit()):
        return None
    now = totp.timecode(time.time() if at is None else at)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if (after is None or step > after) and pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
