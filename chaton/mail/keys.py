"""DKIM key material (no Django): generate a key, its ``p=`` value, its published name."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def generate(algorithm: str, bits: int = 2048) -> str:
    """Given "rsa" (with ``bits``) or "ed25519", return a new private key as PKCS#8 PEM."""
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def public_key_of(private_key_pem: str) -> str:
    """Given a private key (PEM), return the base64 ``p=`` value of its DKIM record.

    RSA: the SubjectPublicKeyInfo (DER), as opendkim-genkey writes it; Ed25519: the raw
    32 bytes (RFC 8463).
    """
    key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    else:
        raw = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(raw).decode("ascii")


def published_name(public_key: str) -> str:
    """Return the name a retired key is published under: sha256 (hex) of its ``p=`` value."""
    return hashlib.sha256(public_key.encode("ascii")).hexdigest()
