"""What a person recognises of a session: its device's label."""
import pytest

from users import accounts

LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) " \
        "Version/17.0 Mobile/15E148 Safari/604.1"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.mark.parametrize("user_agent, label", [
    (PHONE, "Mobile Safari on iOS"), (LAPTOP, "Firefox on Linux"), ("curl/8.5.0", "curl"), ("", ""), ("x", ""),
])
def test_the_device_label_is_what_a_person_recognises(user_agent, label):
    assert accounts.device_label(user_agent) == label
