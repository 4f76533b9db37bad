"""Recovery codes: ten, each good once, kept as keyed digests (`keys.digest`): the codes are shown
once, at the moment they are made, and never again."""
import secrets

from users.mfa import keys

COUNT = 10
# No 0/o, 1/l/i: a code is read off paper and typed.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_LENGTH = 10  # about 49 bits, in two groups of five


def new_codes() -> list[str]:
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize(code: str) -> str:
    """As typed: any case, with or without the dash or spaces."""
    raw = "".join(code.split()).replace("-", "").lower()
    return f"{raw[:5]}-{raw[5:]}"


def looks_like(code: str) -> bool:
    """A recovery code's shape (an app's code is six digits)."""
    raw = normalize(code).replace("-", "")
    return len(raw) == _LENGTH and all(char in _ALPHABET for char in raw)


def digests(codes: list[str]) -> list[str]:
    return [keys.digest(normalize(code), purpose="recovery") for code in codes]


def match(code: str, stored: list[str]) -> str | None:
    """The stored digest `code` is, or None."""
    if not looks_like(code):
        return None
    wanted = keys.digest(normalize(code), purpose="recovery")
    found = None
    for digest in stored:  # every one compared: the time says nothing of which matched
        if keys.same(digest, wanted):
            found = digest
    return found
