# tests/interop/ml_dsa.py — the independent side of the ML-DSA interop test (tests/tests/pq_interop.rs):
# builds Cerro Torre's signed message from spec/signature.md §2 on its own, and signs and
# verifies it with dilithium-py (pure-Python ML-DSA, FIPS 204) and, for the Ed25519 half of a
# hybrid, the `cryptography` package. Every value crosses as base64 or hex on the command line.
#
#   ml_dsa.py verify SUITE MANIFEST PUBKEY_B64 SIG_B64     exit 0 valid, 1 invalid
#   ml_dsa.py sign SUITE MANIFEST                           a fresh key, hedged (randomised)
#                                                           signing; prints {"public_key", "signature"}
#   ml_dsa.py vector VECTOR_JSON MANIFEST                   re-derives a spec vector's key from its
#                                                           seed and signs deterministically;
#                                                           prints {"public_key", "signature"}
import base64, json, sys

from dilithium_py.ml_dsa import ML_DSA_87

DOMAIN = b"cerro-torre/manifest-signature/v1\x00"
ED25519_PK, ED25519_SIG = 32, 64


def message(suite, manifest_path):
    with open(manifest_path, "rb") as f:
        return DOMAIN + suite.encode("ascii") + b"\x00" + f.read()


def ed25519():
    from cryptography.hazmat.primitives.asymmetric import ed25519 as e
    return e


def verify(suite, manifest, pk, sig):
    m = message(suite, manifest)
    if suite == "CT-SIG-03":
        return ML_DSA_87.verify(pk, m, sig)
    if suite == "CT-SIG-02":
        if len(pk) != ED25519_PK + 2592 or len(sig) != ED25519_SIG + 4627:
            return False
        try:
            ed25519().Ed25519PublicKey.from_public_bytes(pk[:ED25519_PK]).verify(sig[:ED25519_SIG], m)
        except Exception:
            return False
        return ML_DSA_87.verify(pk[ED25519_PK:], m, sig[ED25519_SIG:])
    raise SystemExit(f"unknown suite {suite}")


def raw_public(key):
    from cryptography.hazmat.primitives import serialization
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign(suite, manifest):
    m = message(suite, manifest)
    pk, sk = ML_DSA_87.keygen()
    sig = ML_DSA_87.sign(sk, m)  # hedged: fresh randomness, as FIPS 204 recommends by default
    if suite == "CT-SIG-02":
        ek = ed25519().Ed25519PrivateKey.generate()
        pk, sig = raw_public(ek) + pk, ek.sign(m) + sig
    elif suite != "CT-SIG-03":
        raise SystemExit(f"unknown suite {suite}")
    return pk, sig


def vector(path, manifest):
    with open(path) as f:
        v = json.load(f)
    suite, seed = v["suite"], bytes.fromhex(v["seed_hex"])
    m = message(suite, manifest)
    xi = seed[32:] if suite == "CT-SIG-02" else seed
    pk, sk = ML_DSA_87.key_derive(xi)
    sig = ML_DSA_87.sign(sk, m, deterministic=True)
    if suite == "CT-SIG-02":
        ek = ed25519().Ed25519PrivateKey.from_private_bytes(seed[:32])
        pk, sig = raw_public(ek) + pk, ek.sign(m) + sig
    return pk, sig


def out(pk, sig):
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    print(json.dumps({"public_key": b64(pk), "signature": b64(sig)}))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "verify" and len(argv) == 6:
        ok = verify(argv[2], argv[3], base64.b64decode(argv[4]), base64.b64decode(argv[5]))
        print("valid" if ok else "invalid")
        return 0 if ok else 1
    if cmd == "sign" and len(argv) == 4:
        out(*sign(argv[2], argv[3]))
        return 0
    if cmd == "vector" and len(argv) == 4:
        out(*vector(argv[2], argv[3]))
        return 0
    print(__doc__ or "usage: see the comment at the top", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
