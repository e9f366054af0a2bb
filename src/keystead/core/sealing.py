"""Encryption at rest for key material and stored secrets, keyed by KEYSTEAD_SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived with HKDF-SHA256.
Without a secret key the `Sealer` is a pass-through and says so (`encrypts` is False), so callers
can record whether a stored value is protected and the server can warn at start.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keystead.errors import ConfigError


@dataclass(frozen=True)
class Sealer:
    secret_key: str = field(default="", repr=False)

    @property
    def encrypts(self) -> bool:
        return bool(self.secret_key)

    def _fernet(self) -> Fernet:
        raw = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"keystead sealing v1"
        ).derive(self.secret_key.encode())
        return Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, plaintext: bytes) -> bytes:
        return self._fernet().encrypt(plaintext) if self.encrypts else plaintext

    def open(self, stored: bytes, *, encrypted: bool = True) -> bytes:
        """Decrypt a value sealed by `seal`; `encrypted=False` marks a value stored in clear."""
        if not encrypted:
            return stored
        if not self.encrypts:
            raise ConfigError("stored keys are encrypted: set KEYSTEAD_SECRET_KEY to use them")
        try:
            return self._fernet().decrypt(stored)
        except InvalidToken:
            raise ConfigError("KEYSTEAD_SECRET_KEY does not decrypt the stored keys") from None
