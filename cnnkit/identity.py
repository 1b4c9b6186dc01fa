"""Who a browser is: a random id held in a first-party cookie, and the lecturer key.

An identity is a 192-bit random string (`new_owner_id`) that the app gives a browser on
its first visit and the browser keeps in a cookie; nothing else. It is not an account and
has no password: whoever holds the cookie is that student, and a browser whose cookies
are cleared starts afresh. It is never put in a URL, so a copied link carries nobody's
identity. Runs and jobs record their owner id; the registry and the run listings hand
them to that owner only.

Files on the server never need the raw id for anything but ownership: the class book
(nicknames, numbers, lecturer browsers) keys students by `owner_key`, a one-way hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

COOKIE_NAME = "cnnlab_id"
COOKIE_MAX_AGE = 365 * 24 * 3600   # a year: a course, with room to spare
ID_BYTES = 24                      # 192 random bits
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")  # token_urlsafe(24) is 32 characters


def new_owner_id() -> str:
    """A fresh, unguessable identity (192 bits from the operating system's random source)."""
    return secrets.token_urlsafe(ID_BYTES)


def is_owner_id(value: object) -> bool:
    """True for a string shaped like `new_owner_id()`'s; anything else (an old 12-character id,
    a hand-typed value, markup) is not accepted as an identity."""
    return isinstance(value, str) and bool(_ID_RE.match(value))


def owner_key(owner: str) -> str:
    """A short one-way name for an identity, for files that only need to tell students apart."""
    return hashlib.sha256(f"cnnlab-owner:{owner}".encode()).hexdigest()[:20]


def key_matches(given: str, configured: str | None) -> bool:
    """Constant-time comparison of a typed lecturer key with the configured one (surrounding blanks ignored)."""
    if not configured or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.strip().encode(), configured.strip().encode())


def lecturer_token(owner: str, configured_key: str) -> str:
    """What the class book stores for a browser unlocked with the lecturer key: tied to both the
    browser's identity and the key, so changing the key locks every browser out again."""
    return hmac.new(configured_key.strip().encode(), owner_key(owner).encode(), hashlib.sha256).hexdigest()[:32]
