#!/usr/bin/env python3
"""Makes an RSA key with openssl, its JWKS, and RS256-signed JWTs, for the OAUTHBEARER checks.

Python's standard library and the openssl command only (no JWT library in the venv).
Usage: make_jwt.py DIR SUB AUDIENCE ISSUER
Writes DIR/jwks.json (the public key, kid "compat-1"), DIR/token.jwt (valid for an hour)
and DIR/wrong-audience.jwt (the same with the audience "elsewhere").
"""

import base64
import json
import os
import subprocess
import sys
import time


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(key, claims):
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "compat-1"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input,
                         capture_output=True, check=True).stdout
    return f"{header}.{payload}.{b64url(sig)}"


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    out, sub, aud, iss = sys.argv[1:]
    key = os.path.join(out, "jwt-key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                   capture_output=True, check=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], capture_output=True,
                             check=True, text=True).stdout.strip().split("=", 1)[1]
    n = bytes.fromhex(modulus)
    jwks = {"keys": [{"kty": "RSA", "kid": "compat-1", "use": "sig", "alg": "RS256",
                      "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}]}
    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump(jwks, f)
    now = int(time.time())
    claims = {"sub": sub, "aud": aud, "iss": iss, "iat": now, "exp": now + 3600, "scope": "kafka"}
    with open(os.path.join(out, "token.jwt"), "w") as f:
        f.write(sign(key, claims))
    with open(os.path.join(out, "wrong-audience.jwt"), "w") as f:
        f.write(sign(key, dict(claims, aud="elsewhere")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
