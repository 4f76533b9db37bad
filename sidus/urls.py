from adrf.routers import SimpleRouter
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from sidus.health import health
from users import pages
from users.api import wellknown
from users.api.accounts import (
    EmailChangeConfirmView,
    EmailChangeRevertView,
    EmailChangeView,
    EmailVerificationResendView,
    EmailVerifyView,
    PasswordChangeView,
    PasswordResetConfirmView,
    PasswordResetView,
    SecureAccountView,
    SignupConfirmView,
)
from users.api.factors import (
    FactorsView,
    MfaAuthenticateView,
    PasskeyAssertionOptionsView,
    PasskeyDetailView,
    PasskeyListView,
    PasskeyLoginOptionsView,
    PasskeyLoginView,
    PasskeyRegistrationOptionsView,
    RecoveryCodesView,
    TotpConfirmView,
    TotpView,
)
from users.api.sessions import SecurityLogView, SessionDetailView, SessionListView
from users.api.tokens import IntrospectView, TokenBlacklistView, TokenObtainPairView, TokenRefreshView
from users.api.views import UserViewSet
from users.profile import routes


def _router_urls() -> list:
    router = SimpleRouter()
    router.register("users", UserViewSet, basename=routes.BASENAME)
    return router.urls


API_V1 = [
    path("users/me/events/", SecurityLogView.as_view(), name="security_log"),
    path("", include(_router_urls())),
    path("auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("auth/token/blacklist/", TokenBlacklistView.as_view(), name="token_blacklist"),
    path("auth/introspect/", IntrospectView.as_view(), name="introspect"),
    path("auth/sessions/", SessionListView.as_view(), name="sessions"),
    path("auth/sessions/<uuid:session_id>/", SessionDetailView.as_view(), name="session"),
    path("auth/password/change/", PasswordChangeView.as_view(), name="password_change"),
    path("auth/password/reset/", PasswordResetView.as_view(), name="password_reset"),
    path("auth/password/reset/confirm/", PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("auth/email/verify/", EmailVerifyView.as_view(), name="email_verify"),
    path("auth/email/verify/resend/", EmailVerificationResendView.as_view(), name="email_verify_resend"),
    path("auth/signup/confirm/", SignupConfirmView.as_view(), name="signup_confirm"),
    path("auth/email/change/", EmailChangeView.as_view(), name="email_change"),
    path("auth/email/change/confirm/", EmailChangeConfirmView.as_view(), name="email_change_confirm"),
    path("auth/email/change/revert/", EmailChangeRevertView.as_view(), name="email_change_revert"),
    path("auth/secure-account/", SecureAccountView.as_view(), name="secure_account"),
    path("auth/mfa/", FactorsView.as_view(), name="mfa"),
    path("auth/mfa/authenticate/", MfaAuthenticateView.as_view(), name="mfa_authenticate"),
    path("auth/mfa/totp/", TotpView.as_view(), name="mfa_totp"),
    path("auth/mfa/totp/confirm/", TotpConfirmView.as_view(), name="mfa_totp_confirm"),
    path("auth/mfa/recovery-codes/", RecoveryCodesView.as_view(), name="mfa_recovery_codes"),
    path("auth/passkeys/", PasskeyListView.as_view(), name="passkeys"),
    path("auth/passkeys/<int:passkey_id>/", PasskeyDetailView.as_view(), name="passkey"),
    path("auth/passkeys/registration/options/", PasskeyRegistrationOptionsView.as_view(),
         name="passkey_registration_options"),
    path("auth/passkeys/assertion/options/", PasskeyAssertionOptionsView.as_view(), name="passkey_assertion_options"),
    path("auth/passkeys/login/options/", PasskeyLoginOptionsView.as_view(), name="passkey_login_options"),
    path("auth/passkeys/login/", PasskeyLoginView.as_view(), name="passkey_login"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(API_V1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("health/", health, name="health"),
    path(".well-known/jwks.json", wellknown.jwks, name="jwks"),
    path(".well-known/openid-configuration", wellknown.openid_configuration, name="openid_configuration"),
    path("", pages.home, name="home"),
    path("favicon.ico", pages.favicon),
    # The pages the emailed links open when FRONTEND_URL is sidus itself (users/pages/).
    path("verify-email", pages.verify_email, name="verify_email_page"),
    path("password-reset", pages.password_reset, name="password_reset_page"),
    path("confirm-signup", pages.confirm_signup, name="confirm_signup_page"),
    path("confirm-email-change", pages.confirm_email_change, name="confirm_email_change_page"),
    path("revert-email-change", pages.revert_email_change, name="revert_email_change_page"),
    path("secure-account", pages.secure_account, name="secure_account_page"),
]

# JSON, not HTML, for errors raised outside the API views.
handler400 = "rest_framework.exceptions.bad_request"
handler404 = "sidus.http.exception_handler.not_found"
handler500 = "rest_framework.exceptions.server_error"
