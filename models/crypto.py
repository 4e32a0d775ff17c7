"""Credentials encrypted at rest with Fernet; the key comes from config and may be a rotation list."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, MultiFernet
from flask import current_app


def _fernet() -> MultiFernet:
    keys = [key.strip() for key in current_app.config["CREDENTIALS_KEY"].split(",") if key.strip()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_json(values: dict[str, str]) -> str:
    return _fernet().encrypt(json.dumps(values).encode()).decode()


def rotate(token: str) -> str:
    """The same secret, encrypted again with the newest key (the first in CREDENTIALS_KEY)."""
    return _fernet().rotate(token.encode()).decode()


def decrypt_json(token: str | None) -> dict[str, str]:
    if not token:
        return {}
    return json.loads(_fernet().decrypt(token.encode()))
