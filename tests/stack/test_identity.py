"""Who a request is, decided from its headers as Supabase's gateway and PostgREST decide it (no stack needed)."""

from __future__ import annotations

import time

import jwt
import pytest

from liveparams.tokens import mint_jwt
from liveparams_stack import keys
from liveparams_stack.identity import AuthError, identify
from liveparams_stack.rest import status_for_sqlstate

SECRET = keys.JWT_SECRET


def test_the_bearer_token_decides_over_the_apikey() -> None:
    user = mint_jwt({"sub": "u1", "role": "authenticated"}, SECRET)
    identity = identify({"apikey": keys.ANON_KEY, "Authorization": f"Bearer {user}"}, SECRET)
    assert identity.role == "authenticated" and identity.claims["sub"] == "u1"


def test_the_apikey_alone_decides_without_a_bearer() -> None:
    assert identify({"apikey": keys.SERVICE_ROLE_KEY}, SECRET).role == "service_role"
    assert identify({"apikey": keys.ANON_KEY}, SECRET).claims["iss"] == "supabase-demo"


@pytest.mark.parametrize(("key", "role"), [(keys.PUBLISHABLE_KEY, "anon"), (keys.SECRET_KEY, "service_role")])
def test_opaque_keys_stand_for_their_roles(key: str, role: str) -> None:
    assert identify({"apikey": key}, SECRET).role == role
    assert identify({"apikey": key, "Authorization": f"Bearer {key}"}, SECRET).role == role


def test_no_key_at_all_runs_as_anon_as_the_cli_gateway_passes_it_on() -> None:
    identity = identify({}, SECRET)
    assert identity.role == "anon" and identity.claims == {"role": "anon"}


def test_an_sb_key_as_bearer_yields_to_the_apikey_as_the_cli_gateway_does() -> None:
    headers = {"apikey": keys.SERVICE_ROLE_KEY, "Authorization": f"Bearer {keys.PUBLISHABLE_KEY}"}
    assert identify(headers, SECRET).role == "service_role"


def test_a_token_without_a_role_claim_is_anon() -> None:
    assert identify({"apikey": mint_jwt({"sub": "x"}, SECRET)}, SECRET).role == "anon"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"apikey": "sb_publishable_forged"}, "Invalid API key"),
        (
            {"apikey": keys.ANON_KEY, "Authorization": "Bearer " + mint_jwt({}, SECRET, expires_in=-1)},
            "JWT expired",
        ),
        ({"apikey": mint_jwt({"role": "service_role"}, "x" * 40)}, "JWSError JWSInvalidSignature"),
    ],
    ids=["unknown opaque key", "expired", "wrong secret"],
)
def test_bad_credentials_are_refused(headers: dict[str, str], message: str) -> None:
    with pytest.raises(AuthError, match=message):
        identify(headers, SECRET)


@pytest.mark.parametrize(
    ("code", "role", "status"),
    [
        ("P0001", "authenticated", 400),
        ("22023", "authenticated", 400),
        ("42501", "anon", 401),
        ("42501", "authenticated", 403),
        ("PT404", "authenticated", 404),
        ("PT409", "service_role", 409),
        ("23505", "authenticated", 409),
        ("42883", "anon", 404),
        ("P0002", "authenticated", 500),
        ("55000", "authenticated", 500),
        ("53300", "authenticated", 503),
        ("53400", "authenticated", 500),
        ("08006", "authenticated", 503),
    ],
)
def test_sqlstates_map_to_postgrest_statuses(code: str, role: str, status: int) -> None:
    assert status_for_sqlstate(code, role) == status


def test_a_token_accepted_once_is_refused_once_it_has_expired() -> None:
    """The stack verifies a token once and remembers it; its expiry must still be checked on every request."""
    token = mint_jwt({"sub": "u1", "role": "authenticated"}, SECRET, expires_in=1)
    headers = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {token}"}
    assert identify(headers, SECRET).role == "authenticated"
    time.sleep(max(jwt.decode(token, options={"verify_signature": False})["exp"] - time.time(), 0) + 0.05)
    with pytest.raises(AuthError, match="JWT expired"):
        identify(headers, SECRET)
