"""The account flows: the rules of changing a user, one module per flow, shared by the API, the
pages, the admin and the tasks (as allauth's internal/flows/). Nothing else writes users.

Each is a function named `<entity>_<verb>` with keyword-only arguments; each raises an error of
its own (`errors`) for its callers to word. They are all importable from here.
"""
from users.accounts.email_change import (
    email_change_confirm,
    email_change_request,
    email_change_revert,
    email_changes_cancel,
)
from users.accounts.errors import (
    FactorConflict,
    FactorNotValid,
    FactorRequired,
    LinkNotValid,
    MfaTokenNotValid,
    NameTaken,
    RefreshTokenReused,
    SessionNotLive,
)
from users.accounts.factors import (
    factors_of,
    factors_remove,
    factors_remove_by_staff,
    has_factor,
    passkey_add,
    passkey_registration_options,
    passkey_remove,
    passkey_rename,
    recovery_codes_regenerate,
    totp_begin,
    totp_confirm,
    totp_disable,
)
from users.accounts.lifecycle import account_secure, user_restore, user_soft_delete, users_restore, users_soft_delete
from users.accounts.mfa import (
    assertion_options,
    challenges_prune,
    factor_verify,
    mfa_check_cost,
    mfa_login_begin,
    mfa_login_complete,
    mfa_login_user,
    passkey_login,
    passkey_login_options,
)
from users.accounts.passwords import (
    email_verification_resend,
    email_verify,
    password_change,
    password_reset_ask,
    password_reset_request,
    password_reset_send,
)
from users.accounts.profile import profile_update_async, user_change_by_staff, user_update
from users.accounts.sessions import (
    device_label,
    login_failed,
    network_of,
    session_end,
    session_logout,
    session_refresh,
    session_start,
    sessions_end,
    sessions_live,
    sessions_prune,
)
from users.accounts.signup import signup_confirm, signup_request, signups_expire, user_create

__all__ = [
    "FactorConflict", "FactorNotValid", "FactorRequired", "LinkNotValid", "MfaTokenNotValid", "NameTaken",
    "RefreshTokenReused", "SessionNotLive",
    "account_secure", "assertion_options", "challenges_prune", "factor_verify", "factors_of", "factors_remove",
    "factors_remove_by_staff",
    "has_factor", "mfa_check_cost", "mfa_login_begin", "mfa_login_complete", "mfa_login_user", "passkey_add",
    "passkey_login", "passkey_login_options", "passkey_registration_options", "passkey_remove", "passkey_rename",
    "recovery_codes_regenerate", "totp_begin", "totp_confirm", "totp_disable",
    "device_label", "email_change_confirm", "email_change_request", "email_change_revert",
    "email_changes_cancel", "email_verification_resend", "email_verify", "login_failed", "network_of",
    "password_change", "password_reset_ask", "password_reset_request", "password_reset_send",
    "profile_update_async", "session_end", "session_logout", "session_refresh", "session_start", "sessions_end",
    "sessions_live", "sessions_prune", "signup_confirm", "signup_request", "signups_expire", "user_change_by_staff",
    "user_create", "user_restore", "user_soft_delete", "user_update", "users_restore", "users_soft_delete",
]
