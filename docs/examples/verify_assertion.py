#!/usr/bin/env python3
"""Verify the X-Govgate-Assertion header an app behind govgate receives.

    pip install 'PyJWT[crypto]'

In an app:

    from verify_assertion import Verifier
    verifier = Verifier("https://shebao.example.gov.cn/.govgate/jwks.json", audience="shebao")
    claims = verifier.verify(request.headers["X-Govgate-Assertion"])   # raises jwt.InvalidTokenError
    user_id = claims["sub"]

From the command line (exit status 0 when valid, 1 otherwise):

    verify_assertion.py --jwks https://shebao.example.gov.cn/.govgate/jwks.json --audience shebao TOKEN
    verify_assertion.py --jwks jwks.json --audience shebao TOKEN          # a saved JWK Set
"""

import argparse
import json
import sys

import jwt  # PyJWT

ISSUER = "govgate"


class Verifier:
    """Checks signature (ES256, key chosen by `kid` from the gateway's JWKS), issuer, audience
    (this app's name in the gateway policy), expiry and not-before."""

    def __init__(self, jwks, audience, leeway=5):
        self.audience = audience
        self.leeway = leeway
        if jwks.startswith("https://") or jwks.startswith("http://"):
            # Fetched once and cached; fetched again when a token names an unknown key.
            self._client = jwt.PyJWKClient(jwks, cache_keys=True)
            self._keys = None
        else:
            with open(jwks, encoding="utf-8") as f:
                self._keys = jwt.PyJWKSet.from_dict(json.load(f))
            self._client = None

    def _key(self, token):
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        for k in self._keys.keys:
            if k.key_id == kid:
                return k.key
        raise jwt.InvalidTokenError(f"unknown key {kid!r}")

    def verify(self, token):
        return jwt.decode(
            token,
            self._key(token),
            algorithms=["ES256"],  # never taken from the token itself
            audience=self.audience,
            issuer=ISSUER,
            leeway=self.leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )


def main(argv=None):
    p = argparse.ArgumentParser(description="Verify an X-Govgate-Assertion JWT")
    p.add_argument("--jwks", required=True, help="URL of /.govgate/jwks.json, or a saved JWK Set file")
    p.add_argument("--audience", required=True, help="the app's name in the gateway policy")
    p.add_argument("token")
    a = p.parse_args(argv)
    try:
        claims = Verifier(a.jwks, a.audience).verify(a.token)
    except jwt.InvalidTokenError as e:
        print(f"invalid: {e}", file=sys.stderr)
        return 1
    print(json.dumps(claims, ensure_ascii=False, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
