"""A real server's access log of the pages behind the emailed links."""
import pytest

from tests.integration.test_pages import link
from tests.support import PASSWORD
from users.mail import links
from users.models import User


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_access_log_has_a_links_path_but_never_its_token():
    from tests.servers import Worker, worker_env

    user = User.objects.create_user("logged", "logged@example.com", PASSWORD)
    params = link(user, links.password_reset_token)
    worker = Worker(worker_env(), "--log-level", "info", "--access-log", "true")
    try:
        worker.wait_until_serving()
        first = worker.client.get("/password-reset", params=params)
        assert first.status_code == 302 and first.headers["location"] == "/password-reset"
        form = worker.client.get("/password-reset")  # the cookie, not the URL, brings the link
        assert form.status_code == 200 and 'name="new_password"' in form.text
        assert params["token"] not in form.text
    finally:
        worker.stop()
    log = worker.output()
    assert '"GET /password-reset?uid=' in log and "token=[redacted]" in log
    assert params["token"] not in log
    quiet = Worker(worker_env(), "--log-level", "info")  # access log off, as the benchmark runs it
    try:
        quiet.wait_until_serving()
        assert quiet.client.get("/password-reset", params=params).status_code == 302
    finally:
        quiet.stop()
    assert "/password-reset" not in quiet.output()  # the redaction added no access log of its own
