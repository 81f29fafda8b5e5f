"""Bearer tokens: their format, their digest, and parsing an Authorization header without trusting it."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from receiver.bearer_tokens import MAX_HEADER_CHARS, InvalidBearer, issue_token, parse_bearer

FORMAT = re.compile(r"^cl_(auditor|admin)_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
FIXED_MESSAGES = {
    "missing Authorization header",
    "the Authorization header is not a bearer token",
    "the bearer token is not a credledger token",
}


def parse_or_refusal(header: str) -> tuple[str, str] | str:
    """What parse_bearer returns, or the message of the InvalidBearer it raises."""
    try:
        return parse_bearer(header)
    except InvalidBearer as error:
        return str(error)


def test_an_issued_token_has_the_documented_format() -> None:
    """cl_<role>_<12 hex>_<43 urlsafe base64 characters, no padding>."""
    token, _ = issue_token("auditor", "ci")
    assert FORMAT.match(token)
    assert token.startswith("cl_auditor_")


def test_the_event_holds_the_digest_of_the_whole_token_and_not_the_token() -> None:
    """token.created carries id, name, role and the hex SHA-256 of the token text, nothing else."""
    token, created = issue_token("admin", "ops")
    secret = token.split("_", 3)[3]
    assert created.to_data() == {
        "token_id": token.split("_")[2],
        "name": "ops",
        "role": "admin",
        "digest": hashlib.sha256(token.encode()).hexdigest(),
    }
    assert secret not in repr(created.to_data())


def test_two_issued_tokens_share_nothing_but_the_prefix() -> None:
    """Ids and secrets are drawn afresh each time."""
    (first, a), (second, b) = issue_token("auditor", "x"), issue_token("auditor", "x")
    assert a.token_id != b.token_id
    assert first.split("_", 3)[3] != second.split("_", 3)[3]


def test_an_unknown_role_is_refused() -> None:
    """Only auditor and admin tokens exist."""
    with pytest.raises(ValueError, match="role"):
        issue_token("root", "x")


def test_a_bearer_header_parses_to_id_and_token() -> None:
    """The scheme is case-insensitive and surrounding white space is ignored."""
    token, created = issue_token("auditor", "x")
    assert parse_bearer(f"  bearer   {token} ") == (created.token_id, token)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token cl_auditor_0123456789ab_" + "A" * 43,
        "Bearer cl_root_0123456789ab_" + "A" * 43,
        "Bearer cl_auditor_0123456789AB_" + "A" * 43,
        "Bearer cl_auditor_0123456789a_" + "A" * 43,
        "Bearer cl_auditor_0123456789ab_" + "A" * 42,
        "Bearer cl_auditor_0123456789ab_" + "A" * 44,
        "Bearer cl_auditor_0123456789ab_" + "A" * 42 + "=",
        "Bearer cl_auditor_0123456789ab_" + "A" * 42 + "+",
        "Bearer cl_auditor_0123456789ab_" + "A" * 43 + " extra",
        "Bearer " + "x" * MAX_HEADER_CHARS,
    ],
)
def test_a_malformed_header_is_refused(header: str | None) -> None:
    """Missing, other schemes, wrong role, id or secret shapes: all InvalidBearer."""
    with pytest.raises(InvalidBearer):
        parse_bearer(header)


def test_the_refusal_never_echoes_the_token() -> None:
    """A near-miss token (one character too many) is not repeated in the error."""
    token, _ = issue_token("admin", "x")
    with pytest.raises(InvalidBearer) as raised:
        parse_bearer(f"Bearer {token}Z")
    assert token not in str(raised.value)
    assert token.split("_", 3)[3] not in repr(raised.value)


@given(st.text(max_size=600))
@example("Bearer \x00")
@example("Bearer cl_admin_000000000000_" + "é" * 43)
@example("Bearer\tcl_admin_000000000000_" + "A" * 43)
def test_any_header_text_parses_or_raises_invalid_bearer(header: str) -> None:
    """Whatever the header holds, the only failure is InvalidBearer, and it never quotes the header."""
    outcome = parse_or_refusal(header)
    if isinstance(outcome, str):
        assert outcome in FIXED_MESSAGES
    else:
        token_id, token = outcome
        assert FORMAT.match(token)
        assert token_id == token.split("_")[2]
