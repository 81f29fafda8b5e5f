"""Standard Webhooks secrets, signing and verification, against the reference vector and library."""

from __future__ import annotations

import base64
import os
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict
from standardwebhooks.webhooks import Webhook

from receiver.webhook_signatures import (
    MAX_ID_CHARS,
    MAX_SIGNATURES,
    InvalidSecret,
    SignatureError,
    WebhookSecret,
    parse_secret,
    parse_secrets,
    sign,
    verify,
)

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_760_000_000
BODY = b'{"type":"user.deleted","user_id":"alice","occurred_at":"2026-01-01T00:00:00Z","data":{}}'


def new_secret(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


def headers(msg_id: str, timestamp: int | str, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def signed(secret: WebhookSecret, body: bytes = BODY, timestamp: int = NOW) -> dict[str, str]:
    return headers("msg_1", timestamp, sign(secret.key, "msg_1", timestamp, body))


def reason_of(secrets: list[WebhookSecret], given_headers: Mapping[str, str], body: bytes = BODY) -> str:
    with pytest.raises(SignatureError) as raised:
        verify(secrets, given_headers, body, now=NOW)
    return raised.value.reason


visible_ids = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=MAX_ID_CHARS
)


def test_known_answer_vector_verifies() -> None:
    """The specification's vector verifies at its own timestamp and names the key that signed it."""
    secrets = parse_secrets(VECTOR_SECRET)
    verified = verify(
        secrets,
        headers(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_SIGNATURE),
        VECTOR_BODY,
        now=VECTOR_TIMESTAMP,
    )
    assert (verified.msg_id, verified.timestamp, verified.key_id) == (
        VECTOR_ID,
        VECTOR_TIMESTAMP,
        secrets[0].key_id,
    )


def test_sign_reproduces_the_known_answer() -> None:
    """Signing the vector's inputs gives the vector's signature, byte for byte."""
    assert sign(parse_secret(VECTOR_SECRET), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


@given(msg_id=visible_ids, timestamp=st.integers(0, 2**33), body=st.binary(max_size=512))
def test_signatures_of_the_reference_library_verify(msg_id: str, timestamp: int, body: bytes) -> None:
    """Whatever the id, time and body, what the `standardwebhooks` package signs, we accept."""
    text = new_secret()
    signature = Webhook(text).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body)
    verified = verify(parse_secrets(text), headers(msg_id, timestamp, signature), body, now=timestamp)
    assert (verified.msg_id, verified.timestamp) == (msg_id, timestamp)


def test_our_signatures_verify_with_the_reference_library() -> None:
    """The reference library accepts what `sign` produces (it checks against the real clock)."""
    text = new_secret()
    timestamp = int(datetime.now(UTC).timestamp())
    signature = sign(parse_secret(text), "msg_ours", timestamp, BODY)
    Webhook(text).verify(BODY, headers("msg_ours", timestamp, signature), json_parse=False)


def test_a_changed_body_does_not_verify() -> None:
    """One byte changed after signing is enough to refuse the request."""
    secrets = parse_secrets(new_secret())
    assert reason_of(secrets, signed(secrets[0]), BODY + b" ") == "no_matching_signature"


def test_any_secret_of_the_list_may_match() -> None:
    """During a rotation a request signed with the old secret still verifies, naming the old key."""
    new, old = parse_secrets(f"{new_secret()},{new_secret()}")
    assert verify([new, old], signed(old), BODY, now=NOW).key_id == old.key_id
    assert verify([new, old], signed(new), BODY, now=NOW).key_id == new.key_id


@pytest.mark.parametrize("known", ["old", "new"])
def test_a_header_signed_with_old_and_new_verifies_with_either(known: str) -> None:
    """A sender that signs with both secrets is accepted whichever one the receiver holds."""
    new, old = parse_secrets(f"{new_secret()},{new_secret()}")
    both = f"{sign(new.key, 'msg_1', NOW, BODY)} {sign(old.key, 'msg_1', NOW, BODY)}"
    receiver_key = new if known == "new" else old
    assert verify([receiver_key], headers("msg_1", NOW, both), BODY, now=NOW).key_id == receiver_key.key_id


def test_a_secret_the_receiver_does_not_hold_is_refused() -> None:
    """A valid signature under someone else's secret is no signature at all."""
    mine, theirs = parse_secrets(f"{new_secret()},{new_secret()}")
    assert reason_of([mine], signed(theirs)) == "no_matching_signature"


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamps_within_five_minutes_either_way_verify(offset: int) -> None:
    """Exactly five minutes early or late is still within the tolerance."""
    secrets = parse_secrets(new_secret())
    assert (
        verify(secrets, signed(secrets[0], timestamp=NOW + offset), BODY, now=NOW).timestamp == NOW + offset
    )


@pytest.mark.parametrize(
    ("offset", "reason"), [(-301, "timestamp_too_old"), (301, "timestamp_too_new")], ids=["old", "new"]
)
def test_timestamps_beyond_five_minutes_are_refused(offset: int, reason: str) -> None:
    """One second past the tolerance, in either direction, is refused even when correctly signed."""
    secrets = parse_secrets(new_secret())
    assert reason_of(secrets, signed(secrets[0], timestamp=NOW + offset)) == reason


def test_a_clock_that_is_not_a_number_fails_closed() -> None:
    """A NaN `now` compares false both ways; that must refuse, not wave the request through."""
    secrets = parse_secrets(new_secret())
    with pytest.raises(SignatureError):
        verify(secrets, signed(secrets[0]), BODY, now=float("nan"))


def test_unknown_signature_versions_are_skipped() -> None:
    """A `v1a,` (Ed25519) entry beside a good `v1,` one does not stop verification."""
    secrets = parse_secrets(new_secret())
    ed25519 = "v1a," + base64.b64encode(os.urandom(64)).decode()
    header = f"{ed25519} {sign(secrets[0].key, 'msg_1', NOW, BODY)}"
    assert verify(secrets, headers("msg_1", NOW, header), BODY, now=NOW).msg_id == "msg_1"


def test_only_unknown_versions_match_nothing() -> None:
    """A header of nothing but versions we do not speak is a missing signature, not a malformed one."""
    secrets = parse_secrets(new_secret())
    header = "v1a," + base64.b64encode(os.urandom(64)).decode()
    assert reason_of(secrets, headers("msg_1", NOW, header)) == "no_matching_signature"


def test_header_names_are_found_whatever_their_case() -> None:
    """A plain dict with capitalised names works like aiohttp's case-insensitive headers."""
    secrets = parse_secrets(new_secret())
    capitalised = {name.title(): value for name, value in signed(secrets[0]).items()}
    assert verify(secrets, capitalised, BODY, now=NOW).msg_id == "msg_1"
    assert verify(secrets, CIMultiDict(capitalised), BODY, now=NOW).msg_id == "msg_1"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("webhook-id", "malformed_id"),
        ("webhook-timestamp", "malformed_timestamp"),
        ("webhook-signature", "malformed_signature"),
    ],
)
def test_a_repeated_header_is_refused(name: str, reason: str) -> None:
    """Two copies of one header are ambiguous: refused rather than picked from."""
    secrets = parse_secrets(new_secret())
    repeated = CIMultiDict(signed(secrets[0]))
    repeated.add(name.upper(), repeated[name])
    assert reason_of(secrets, repeated) == reason


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_or_empty_header_is_refused(missing: str) -> None:
    """Each of the three headers is required and must not be blank."""
    secrets = parse_secrets(new_secret())
    without = {name: value for name, value in signed(secrets[0]).items() if name != missing}
    assert reason_of(secrets, without) == "missing_headers"
    assert reason_of(secrets, {**without, missing: "  "}) == "missing_headers"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("webhook-id", "msg 1", "malformed_id"),
        ("webhook-id", "msg_é", "malformed_id"),
        ("webhook-id", "m" * (MAX_ID_CHARS + 1), "malformed_id"),
        ("webhook-timestamp", "-1", "malformed_timestamp"),
        ("webhook-timestamp", "1614265330.5", "malformed_timestamp"),
        ("webhook-timestamp", "١٦١٤٢٦٥٣٣٠", "malformed_timestamp"),
        ("webhook-timestamp", "9" * 5000, "malformed_timestamp"),
        ("webhook-signature", "v1", "malformed_signature"),
        ("webhook-signature", "v1,", "malformed_signature"),
        ("webhook-signature", ",abc", "malformed_signature"),
        ("webhook-signature", "v1,not base64 at all!", "malformed_signature"),
        ("webhook-signature", "v1,@@@@", "malformed_signature"),
        ("webhook-signature", "v1," + base64.b64encode(bytes(31)).decode(), "malformed_signature"),
        (
            "webhook-signature",
            "v1," + base64.b64encode(bytes(32)).decode().rstrip("="),
            "malformed_signature",
        ),
        ("webhook-signature", " ".join(["v1a,x"] * (MAX_SIGNATURES + 1)), "malformed_signature"),
        ("webhook-signature", "v1a," + "A" * 5000, "malformed_signature"),
    ],
)
def test_malformed_headers_name_the_header_at_fault(field: str, value: str, reason: str) -> None:
    """Bad shapes the reference library trips over (no comma, bad base64) are SignatureErrors here."""
    secrets = parse_secrets(new_secret())
    assert reason_of(secrets, {**signed(secrets[0]), field: value}) == reason


header_names = st.sampled_from(
    ["webhook-id", "webhook-timestamp", "webhook-signature", "Webhook-Id", "WEBHOOK-SIGNATURE"]
)
signature_entries = st.one_of(
    st.text(max_size=60),
    st.builds(lambda s: "v1," + s, st.text(max_size=60)),
    st.builds(lambda b: "v1," + base64.b64encode(b).decode(), st.binary(max_size=40)),
)


@given(
    given_headers=st.dictionaries(header_names | st.text(max_size=20), st.text(max_size=300), max_size=6),
    body=st.binary(max_size=256),
    now=st.floats(allow_nan=False, allow_infinity=False),
)
def test_arbitrary_headers_raise_only_signature_errors(
    given_headers: dict[str, str], body: bytes, now: float
) -> None:
    """Whatever the headers, the body and the clock, the only failure is a SignatureError."""
    with pytest.raises(SignatureError):
        verify(parse_secrets(VECTOR_SECRET), given_headers, body, now=now)


@given(
    msg_id=visible_ids | st.text(max_size=300),
    timestamp=st.one_of(st.integers(NOW - 400, NOW + 400).map(str), st.text(max_size=20)),
    entries=st.lists(signature_entries, max_size=25),
    body=st.binary(max_size=256),
)
def test_nearly_valid_headers_raise_only_signature_errors(
    msg_id: str, timestamp: str, entries: list[str], body: bytes
) -> None:
    """Headers close enough to valid to reach the signature parser still fail only as SignatureError."""
    with pytest.raises(SignatureError):
        verify(parse_secrets(VECTOR_SECRET), headers(msg_id, timestamp, " ".join(entries)), body, now=NOW)


@pytest.mark.parametrize(
    "text",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsek_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",
        "whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSé",
        "whsec_" + base64.b64encode(b"s" * 23).decode(),
        "whsec_" + base64.b64encode(b"s" * 65).decode(),
    ],
    ids=["no-prefix", "bad-prefix", "bad-base64", "space", "non-ascii", "23-bytes", "65-bytes"],
)
def test_bad_secrets_are_refused_without_being_echoed(text: str) -> None:
    """InvalidSecret, whose message and traceback hold no part of the secret."""
    with pytest.raises(InvalidSecret) as raised:
        parse_secret(text)
    shown = "".join(traceback.format_exception(raised.value))
    assert text not in shown
    assert text.removeprefix("whsec_")[:12] not in shown


@pytest.mark.parametrize("size", [24, 32, 64])
def test_secrets_of_24_to_64_bytes_are_accepted(size: int) -> None:
    """The decoded bytes are the HMAC key."""
    key = os.urandom(size)
    assert parse_secret("whsec_" + base64.b64encode(key).decode()) == key


def test_unpadded_secrets_are_accepted() -> None:
    """A secret whose generator dropped the base64 padding decodes to the same key."""
    key = os.urandom(32)
    assert parse_secret("whsec_" + base64.b64encode(key).decode().rstrip("=")) == key


def test_secret_lists_keep_their_order_and_tolerate_spaces() -> None:
    """Newest first, as configured; spaces around commas are ignored."""
    first, second = new_secret(), new_secret(48)
    parsed = parse_secrets(f" {first} ,\n{second}\n")
    assert [secret.key for secret in parsed] == [parse_secret(first), parse_secret(second)]


def test_a_bad_entry_in_a_list_is_named_by_place_not_value() -> None:
    """The error says which secret is wrong without quoting it."""
    good = new_secret()
    with pytest.raises(InvalidSecret, match="secret 2 of 3") as raised:
        parse_secrets(f"{good},whsec_short,{good}")
    assert "short" not in str(raised.value)
    with pytest.raises(InvalidSecret, match="secret 2 of 2 is empty"):
        parse_secrets(f"{good},")


def test_a_secret_shows_only_its_key_id() -> None:
    """repr and str name the key by an 8-hex-digit id and never show the key."""
    text = new_secret()
    secret = parse_secrets(text)[0]
    for shown in (repr(secret), str(secret), repr([secret])):
        assert secret.key_id in shown
        assert text.removeprefix("whsec_") not in shown
        assert repr(secret.key) not in shown
    assert len(secret.key_id) == 8
    assert int(secret.key_id, 16) >= 0


@given(st.text(max_size=120))
def test_parsing_any_text_gives_a_key_or_invalid_secret(text: str) -> None:
    """The only outcomes are 24 to 64 key bytes or InvalidSecret."""
    try:
        key = parse_secret(text)
    except InvalidSecret:
        return
    assert 24 <= len(key) <= 64
