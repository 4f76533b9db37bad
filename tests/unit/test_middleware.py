"""The deploy check of the middleware's security subclasses."""
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings


def test_the_deploy_check_wants_the_security_subclasses():
    with override_settings(MIDDLEWARE=["sidus.http.middleware.CommonMiddleware"]):
        with pytest.raises(SystemCheckError, match="sidus.W001"):
            call_command("check", "--deploy", "--fail-level", "WARNING")
