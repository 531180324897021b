"""A checkout backend's check of the token from POST /auth/verify-otp, in Python.

Needs only the service's public keys: PyJWT 2.6+ with cryptography (`pip install "pyjwt[crypto]"`,
or Debian's python3-jwt and python3-cryptography), no secret.
"""
import os
import sys
import time

import jwt

JWKS_URL = os.environ.get("OTP_JWKS_URL", "https://otp.example.com/.well-known/jwks.json")
ISSUER = os.environ.get("OTP_TOKEN_ISSUER", "otp-service")  # the service's TOKEN_ISSUER
AUDIENCE = os.environ.get("OTP_TOKEN_AUDIENCE", "checkout")  # the service's TOKEN_AUDIENCE
MAX_TOKEN_AGE_SECONDS = 600  # the service's TOKEN_TTL_SECONDS
LEEWAY_SECONDS = 5

# Once per process: it caches the keys, and fetches them again when a token names a kid it has not
# seen (after the service rotated its key).
jwks_client = jwt.PyJWKClient(JWKS_URL)


def verified_phone_number(token: str) -> str:
    """The verified phone number (E.164) in the token; raises jwt.InvalidTokenError if it must not be trusted."""
    if jwt.get_unverified_header(token).get("typ") != "JWT":
        raise jwt.InvalidTokenError("typ is not JWT")
    signing_key = jwks_client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],  # only ES256: `alg: none` and HMAC tricks with the public key are refused
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway=LEEWAY_SECONDS,
        options={"require": ["iss", "aud", "sub", "jti", "iat", "exp"]},
    )
    if claims["iat"] < time.time() - MAX_TOKEN_AGE_SECONDS - LEEWAY_SECONDS:
        raise jwt.ExpiredSignatureError("token is older than the maximum age")
    return claims["sub"]


# `python3 verify_token.py <token>` prints the number, or why the token was refused (exit code 1).
if __name__ == "__main__":
    try:
        print(verified_phone_number(sys.argv[1] if len(sys.argv) > 1 else ""))
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as error:
        print(f"refused: {type(error).__name__}", file=sys.stderr)
        sys.exit(1)
