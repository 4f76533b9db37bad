"""The hash inputs of the emailed links: no two users or addresses share one."""
from datetime import datetime, timezone
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from users.mail import links
from users.models import MAX_USER_ID

ids = st.integers(min_value=1, max_value=MAX_USER_ID)
addresses = st.text(min_size=0, max_size=40)
logins = st.none() | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))
reset_values = st.tuples(ids, st.text(max_size=20), logins, addresses)  # pk, password hash, last login, email


def _verification_input(pk, email, verified, timestamp):
    user = SimpleNamespace(pk=pk, email=email, email_verified=verified)
    return links.email_verification_token._make_hash_value(user, timestamp)


def _reset_input(pk, password, last_login, email, timestamp):
    last_login = last_login and last_login.replace(tzinfo=timezone.utc)
    user = SimpleNamespace(pk=pk, password=password, last_login=last_login, email=email)
    return links.password_reset_token._make_hash_value(user, timestamp)


@settings(max_examples=300, deadline=None)
@given(st.tuples(ids, addresses, st.booleans()), st.tuples(ids, addresses, st.booleans()), st.integers(0, 10**10))
def test_no_two_users_or_addresses_share_a_verification_hash_input(first, second, timestamp):
    if first != second:
        assert _verification_input(*first, timestamp) != _verification_input(*second, timestamp)


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789", min_size=2, max_size=19).filter(lambda s: s[0] != "0"), addresses, st.data())
def test_splitting_one_string_into_id_and_address_two_ways_gives_two_hash_inputs(digits, tail, data):
    """The exact shape of the defect: the same characters cut at two places between id and address."""
    cut = data.draw(st.integers(1, len(digits) - 1))
    short = (int(digits[:cut]), digits[cut:] + tail, False)
    long = (int(digits), tail, False)
    assert _verification_input(*short, 1) != _verification_input(*long, 1)


@settings(max_examples=300, deadline=None)
@given(reset_values, reset_values, st.integers(0, 10**10))
def test_no_two_users_share_a_reset_hash_input(first, second, timestamp):
    def to_the_second(values):  # the token keeps the last login to the second, as Django's does
        return (*values[:2], values[2] and values[2].replace(microsecond=0), values[3])

    if to_the_second(first) != to_the_second(second):
        assert _reset_input(*first, timestamp) != _reset_input(*second, timestamp)
