#!/usr/bin/env python3
"""A relying party written with Authlib (not Rust) that signs a user in at govgate's identity
provider and checks every step as a client application would.

Discovery, authorization request (PKCE S256, state, nonce), the provider's login form (as a
browser would fill it), code, token request (client_secret_basic), ID-token validation against
the JWKS (signature, iss, aud, exp, iat, nonce, at_hash), UserInfo, refresh, RP-initiated logout
with a back-channel logout token received and validated by this RP, and the tokens refused
afterwards. Prints one line per step; exits non-zero at the first failure.

    python3 tests/rp/python_rp.py --issuer https://localhost:8443 --ca data/tls/ca.pem \
        --client-id rp --client-secret SECRET --redirect-uri http://127.0.0.1:1/cb \
        --post-logout-uri http://127.0.0.1:1/bye --backchannel-port 18990 \
        --username zhangsan --password-stdin < password.txt

Needs: pip install authlib requests cryptography
"""

import argparse
import html
import http.server
import queue
import re
import secrets
import sys
import threading
import time
import urllib.parse

import warnings

import requests
from authlib.integrations.requests_client import OAuth2Session

with warnings.catch_warnings():
    # authlib.jose is deprecated for joserfc from Authlib 1.6 on, and kept until 2.0.
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def step(msg):
    print(f"ok: {msg}", flush=True)


def hidden_fields(page):
    """The hidden inputs of an HTML form, unescaped."""
    fields = {}
    for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields[html.unescape(m.group(1))] = html.unescape(m.group(2))
    return fields


def start_backchannel_receiver(port):
    """A back-channel logout endpoint on 127.0.0.1:port; logout tokens arrive on the queue."""
    tokens = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            form = urllib.parse.parse_qs(body)
            tokens.put((self.headers.get("Content-Type", ""), form.get("logout_token", [""])[0]))
            self.send_response(200)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--ca", required=True, help="CA certificate (PEM) of the provider's TLS")
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--redirect-uri", required=True)
    ap.add_argument("--post-logout-uri", required=True)
    ap.add_argument("--backchannel-port", type=int, required=True)
    ap.add_argument("--username", required=True)
    ap.add_argument("--password-stdin", action="store_true", required=True)
    a = ap.parse_args()
    password = sys.stdin.readline().rstrip("\r\n")
    logout_tokens = start_backchannel_receiver(a.backchannel_port)

    # Discovery (OIDC Discovery §4) and the keys.
    meta = requests.get(a.issuer + "/.well-known/openid-configuration", verify=a.ca, timeout=10).json()
    check(meta["issuer"] == a.issuer, f"issuer {meta['issuer']} != {a.issuer}")
    for k in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint"):
        check(meta.get(k, "").startswith(a.issuer + "/"), f"{k} under the issuer: {meta.get(k)}")
    check("code" in meta["response_types_supported"] and "S256" in meta["code_challenge_methods_supported"], "code + S256")
    jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], verify=a.ca, timeout=10).json())
    step("discovery and JWKS")

    # The authorization request.
    client = OAuth2Session(
        a.client_id,
        a.client_secret,
        scope="openid profile email",
        redirect_uri=a.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    # The CA given, whatever REQUESTS_CA_BUNDLE or proxies the environment names.
    client.trust_env, client.verify = False, a.ca
    nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier)

    # The user's browser: the login page, the form, the redirect back to the RP.
    browser = requests.Session()
    browser.trust_env, browser.verify = False, a.ca
    page = browser.get(url, allow_redirects=False, timeout=10)
    check(page.status_code == 200 and 'name="password"' in page.text, f"login page: {page.status_code}")
    form = hidden_fields(page.text)
    form.update(username=a.username, password=password)
    r = browser.post(urllib.parse.urljoin(url, form_action(page.text)), data=form, allow_redirects=False, timeout=30)
    check(r.status_code in (302, 303), f"login answered {r.status_code}: {r.text[:300]}")
    callback = r.headers["Location"]
    check(callback.startswith(a.redirect_uri + "?"), f"redirected to {callback}")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
    check(params.get("state") == state, "state returned unchanged")
    check(params.get("iss") == a.issuer, "RFC 9207 iss in the authorization response")
    step("login form and authorization response")

    # Code for tokens; the ID token checked as OIDC Core §3.1.3.7 says.
    token = client.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    check(token.get("token_type", "").lower() == "bearer", f"token_type {token.get('token_type')}")
    claims = validate_id_token(token["id_token"], jwks, a, nonce=nonce, access_token=token["access_token"])
    sub, sid = claims["sub"], claims["sid"]
    step(f"tokens; ID token valid (sub {sub}, alg {jwt_alg(token['id_token'])})")

    info = client.get(meta["userinfo_endpoint"], timeout=10)
    check(info.status_code == 200, f"userinfo {info.status_code}")
    info = info.json()
    check(info["sub"] == sub and info.get("email") and info.get("name"), f"userinfo {info}")
    step("userinfo")

    # Refresh: a new access token, a new ID token about the same user and session.
    old_access = token["access_token"]
    token = client.refresh_token(meta["token_endpoint"])
    check(token["access_token"] != old_access, "a new access token")
    refreshed = validate_id_token(token["id_token"], jwks, a, nonce=None, access_token=token["access_token"])
    check(refreshed["sub"] == sub and refreshed["auth_time"] == claims["auth_time"], "same user and authentication")
    check(client.get(meta["userinfo_endpoint"], timeout=10).status_code == 200, "userinfo with the refreshed token")
    step("refresh")

    # RP-initiated logout, back to the RP with its state.
    logout_state = secrets.token_urlsafe(8)
    q = urllib.parse.urlencode(
        {"id_token_hint": token["id_token"], "post_logout_redirect_uri": a.post_logout_uri, "state": logout_state}
    )
    r = browser.get(meta["end_session_endpoint"] + "?" + q, allow_redirects=False, timeout=30)
    check(r.status_code in (302, 303), f"logout answered {r.status_code}")
    check(r.headers["Location"] == f"{a.post_logout_uri}?state={logout_state}", f"after logout: {r.headers['Location']}")
    step("RP-initiated logout")

    # The back-channel logout token (OIDC Back-Channel Logout §2.4, §2.6).
    try:
        content_type, logout_token = logout_tokens.get(timeout=10)
    except queue.Empty:
        fail("no back-channel logout token")
    check(content_type.startswith("application/x-www-form-urlencoded"), f"content type {content_type}")
    header = jwt_header(logout_token)
    check(header.get("typ") == "logout+jwt", f"typ {header.get('typ')}")
    lt = jwt.decode(logout_token, jwks)
    lt.validate(now=time.time(), leeway=30)
    check(lt["iss"] == a.issuer and lt["aud"] == a.client_id, f"iss/aud {lt}")
    check(lt["sub"] == sub and lt["sid"] == sid, "the logout token names the session")
    check(BACKCHANNEL_EVENT in lt["events"] and "nonce" not in lt and lt.get("jti"), f"logout token claims {dict(lt)}")
    check(abs(time.time() - lt["iat"]) < 120, "iat is now")
    step("back-channel logout token")

    # Everything of the session is over.
    check(client.get(meta["userinfo_endpoint"], timeout=10).status_code == 401, "the access token is refused after logout")
    url, _ = client.create_authorization_url(meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier, prompt="none")
    r = browser.get(url, allow_redirects=False, timeout=10)
    after = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers.get("Location", "")).query))
    check(after.get("error") == "login_required", f"prompt=none after logout: {after}")
    step("tokens and session refused after logout")
    print("python RP: all steps passed", flush=True)


def form_action(page):
    m = re.search(r'<form[^>]* action="([^"]+)"', page)
    check(m is not None, "the login page has a form")
    return html.unescape(m.group(1))


def jwt_header(token):
    import base64
    import json

    h = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))


def jwt_alg(token):
    return jwt_header(token).get("alg")


def validate_id_token(id_token, jwks, a, nonce, access_token):
    options = {"iss": {"essential": True, "value": a.issuer}, "sub": {"essential": True}, "auth_time": {"essential": True}}
    params = {"client_id": a.client_id, "access_token": access_token}
    if nonce is not None:
        params["nonce"] = nonce
    claims = jwt.decode(id_token, jwks, claims_cls=CodeIDToken, claims_options=options, claims_params=params)
    claims.validate(now=time.time(), leeway=30)
    check(claims["aud"] == a.client_id or a.client_id in claims["aud"], "aud")
    if nonce is None:
        check("nonce" not in claims, "no nonce in a refreshed ID token")
    return claims


if __name__ == "__main__":
    main()
