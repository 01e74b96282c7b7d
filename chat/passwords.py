"""Password hashing (argon2id) and the organisation's password rules."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chat.errors import BadRequest
from chat.models import Organisation

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory profile
# A hash to verify against when the login id does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("kakehashi-dummy-password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


def character_classes(password: str) -> int:
    classes = [
        any(c.islower() and c.isascii() for c in password),
        any(c.isupper() and c.isascii() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() or not c.isascii() for c in password),
    ]
    return sum(classes)


def check_password_policy(org: Organisation, password: str) -> None:
    if len(password) < org.password_min_length or character_classes(password) < (
        org.password_min_classes
    ):
        raise BadRequest(
            f"パスワードは{org.password_min_length}文字以上で、英小文字・英大文字・数字・記号の"
            f"うち{org.password_min_classes}種類以上を含めてください。",
            f"The password needs at least {org.password_min_length} characters and "
            f"{org.password_min_classes} of: lower case, upper case, digits, symbols.",
            code="password_too_weak",
        )
    if len(password) > 256:
        raise BadRequest(
            "パスワードは256文字以内にしてください。",
            "The password may be at most 256 characters.",
            code="password_too_weak",
        )
