"""Mints JWTs with PyJWT for mediagate's tests.

    mint.py keys DIR                       write an RSA key pair: DIR/private.pem, DIR/public.pem
    mint.py token --alg HS256 --key SECRET --sub alice [--exp-in 600] [--aud A] [--iss I]
                  [--roles a,b] [--nbf-in N] [--no-exp]
    (--key is the secret for HS*, or a PEM private key file for RS*)
"""
import argparse
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def keys(out):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(f"{out}/private.pem", "wb") as f:
        f.write(private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    with open(f"{out}/public.pem", "wb") as f:
        f.write(private.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        ))


def token(args):
    now = int(time.time())
    claims = {"sub": args.sub, "iat": now}
    if not args.no_exp:
        claims["exp"] = now + args.exp_in
    if args.nbf_in is not None:
        claims["nbf"] = now + args.nbf_in
    if args.aud:
        claims["aud"] = args.aud
    if args.iss:
        claims["iss"] = args.iss
    if args.roles:
        claims["roles"] = args.roles.split(",")
    key = args.key
    if args.alg.startswith(("RS", "PS", "ES")):
        with open(key, "rb") as f:
            key = f.read()
    print(jwt.encode(claims, key, algorithm=args.alg))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keys")
    k.add_argument("dir")
    t = sub.add_parser("token")
    t.add_argument("--alg", required=True)
    t.add_argument("--key", required=True)
    t.add_argument("--sub", required=True)
    t.add_argument("--exp-in", type=int, default=600)
    t.add_argument("--nbf-in", type=int)
    t.add_argument("--no-exp", action="store_true")
    t.add_argument("--aud")
    t.add_argument("--iss")
    t.add_argument("--roles")
    args = p.parse_args()
    if args.cmd == "keys":
        keys(args.dir)
    else:
        token(args)


if __name__ == "__main__":
    sys.exit(main())
