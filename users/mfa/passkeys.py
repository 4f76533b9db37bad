"""Passkeys (WebAuthn Level 3) with py_webauthn: the options a browser's `navigator.credentials`
takes, and the checks of what it answers. The challenge of each ceremony is the caller's to keep
server-side and to use once; an assertion names its challenge and its passkey itself, so the
caller finds both from the credential (`challenge_of`, `credential_id_of`) before checking it."""
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, options_to_json_dict, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

logger = logging.getLogger(__name__)

CHALLENGE_SECONDS = 300


class PasskeyRefused(Exception):
    """What a browser sent is not a valid answer to our challenge (the reason is for the log)."""


@dataclass(frozen=True)
class NewPasskey:
    credential_id: str
    public_key: str
    sign_count: int
    transports: list[str]
    aaguid: str


def _options(options: Any) -> tuple[dict[str, Any], str]:
    return options_to_json_dict(options), bytes_to_base64url(options.challenge)


def _descriptors(credential_ids: list[str]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(cid)) for cid in credential_ids]


def registration_options(*, user_handle: bytes, name: str, exclude: list[str]) -> tuple[dict[str, Any], str]:
    """Options for `navigator.credentials.create()` (a discoverable credential, the person
    verified, none of `exclude` again), and their challenge."""
    return _options(generate_registration_options(
        rp_id=settings.WEBAUTHN_RP_ID, rp_name=settings.WEBAUTHN_RP_NAME, user_id=user_handle, user_name=name,
        timeout=CHALLENGE_SECONDS * 1000, exclude_credentials=_descriptors(exclude),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED),
    ))


def assertion_options(*, allow: list[str] | None) -> tuple[dict[str, Any], str]:
    """Options for `navigator.credentials.get()`: one of `allow` (a second factor), or with None
    any passkey of this site the person picks (a login without a password), and their challenge."""
    return _options(generate_authentication_options(
        rp_id=settings.WEBAUTHN_RP_ID, timeout=CHALLENGE_SECONDS * 1000,
        allow_credentials=_descriptors(allow) if allow is not None else None,
        user_verification=UserVerificationRequirement.REQUIRED if allow is None
        else UserVerificationRequirement.PREFERRED,
    ))


def challenge_of(credential: Any) -> str | None:
    """The challenge an answer signed (from its clientDataJSON), or None if it names none."""
    try:
        client_data = parse_client_data_json(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        return bytes_to_base64url(client_data.challenge)
    except (WebAuthnException, KeyError, TypeError, ValueError, AttributeError):
        return None


def credential_id_of(credential: Any) -> str | None:
    try:
        raw = credential["rawId"]
        return bytes_to_base64url(base64url_to_bytes(raw)) if isinstance(raw, str) and raw else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def verify_registration(credential: Any, *, challenge: str) -> NewPasskey:
    try:
        verified = verify_registration_response(
            credential=json.dumps(credential), expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=settings.WEBAUTHN_RP_ID, expected_origin=settings.WEBAUTHN_ORIGINS,
            require_user_verification=True,
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise PasskeyRefused(str(exc)) from exc
    transports = credential.get("response", {}).get("transports") or []
    return NewPasskey(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key), sign_count=verified.sign_count,
        transports=[t for t in transports if isinstance(t, str)][:8], aaguid=verified.aaguid,
    )


def verify_assertion(credential: Any, *, challenge: str, public_key: str, sign_count: int,
                     user_verification: bool) -> int:
    """The authenticator's new sign counter. A counter that did not move on (a cloned
    authenticator, or a replay) is refused, as py_webauthn refuses it."""
    try:
        verified = verify_authentication_response(
            credential=json.dumps(credential), expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=settings.WEBAUTHN_RP_ID, expected_origin=settings.WEBAUTHN_ORIGINS,
            credential_public_key=base64url_to_bytes(public_key), credential_current_sign_count=sign_count,
            require_user_verification=user_verification,
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise PasskeyRefused(str(exc)) from exc
    return verified.new_sign_count
