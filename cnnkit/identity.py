"""Who a browser is: a random id held in a first-party cookie, and the lecturer key.

An identity is a 192-bit random string (`new_owner_id`) that the app gives a browser on
its first visit and the browser keeps in a cookie; nothing else. It is not an account and
has no password: whoever holds the cookie is that student, and a browser whose cookies
are cleared starts afresh. It is never put in a URL, so a copied link carries nobody's
identity. Runs and jobs record their owner id; the registry and the run listings hand
them to that owner only.

Files on the server never need the raw id for anything but ownership: the class book
(nicknames, numbers, lecturer browsers) keys students by `owner_key`, a one-way hash.

Also here, so that nobody can pose as someone else:
- `KeyThrottle` / `LECTURER_KEY_THROTTLE`: wrong lecturer-key guesses counted for the whole
  server process (every session, tab and browser together), with a growing wait after the first few.
- `visible_text` and `look_alike_skeleton`: a nickname without invisible characters, and what
  it looks like (Cyrillic and Greek letters drawn like Latin ones, 0/O and 1/l/I, rn/m, case and
  width folded), so that two names that look the same compare equal.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

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


# --- wrong lecturer keys, counted for the whole server --------------------------------------------
@dataclass(frozen=True)
class KeyGuess:
    """The answer to one typed lecturer key: `matches`, or refused, with `wait_s` > 0 when it was not even
    compared because the server is still waiting after earlier wrong keys."""

    matches: bool
    wait_s: float = 0.0


class KeyThrottle:
    """Wrong lecturer-key guesses of every session of this process counted together (thread-safe).

    The first `free` wrong guesses cost nothing; after them each guess must wait `first_wait_s`, then
    twice as long after each further wrong one, up to `max_wait_s`. A guess made during the wait is refused
    without being compared (the right key too: a hostile student can keep the lecturer waiting at most
    `max_wait_s`). The right key clears the count; so does `forget_after_s` without a wrong guess.
    """

    def __init__(self, free: int = 3, first_wait_s: float = 2.0, max_wait_s: float = 60.0,
                 forget_after_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.first_wait_s, self.max_wait_s = free, first_wait_s, max_wait_s
        self.forget_after_s, self.clock = forget_after_s, clock
        self._lock = threading.Lock()
        self._wrong = 0
        self._last_wrong = float("-inf")
        self._next_allowed = float("-inf")

    def guess(self, given: str, configured: str | None) -> KeyGuess:
        """Compare `given` with the configured key, unless the server is waiting after wrong guesses."""
        with self._lock:
            now = self.clock()
            if now - self._last_wrong > self.forget_after_s:
                self._wrong = 0
            if now < self._next_allowed:
                return KeyGuess(False, self._next_allowed - now)
            if key_matches(given, configured):
                self._wrong, self._next_allowed = 0, float("-inf")
                return KeyGuess(True)
            self._wrong += 1
            self._last_wrong = now
            if self._wrong >= self.free:
                wait = min(self.max_wait_s, self.first_wait_s * 2 ** min(self._wrong - self.free, 30))
                self._next_allowed = now + wait
            return KeyGuess(False)

    def wait_left(self) -> float:
        """Seconds until the next guess is compared (0: now)."""
        with self._lock:
            return max(0.0, self._next_allowed - self.clock())


LECTURER_KEY_THROTTLE = KeyThrottle()  # one per server process: every session's guesses count together


# --- what a name looks like -------------------------------------------------------------------------
# Letters of other scripts drawn like Latin ones (Unicode's confusables, the common part), then, case
# folded, the digits and letters that look alike in most fonts (0 o; 1 l i I |). NFKC has already
# folded widths, circled and mathematical letters, superscripts.
_LOOK_ALIKE = str.maketrans({
    **dict(zip("аеорсухѕіјԁһӏԛԝүѵɡ", "aeopcyxsijdhlqwyvg", strict=True)),   # Cyrillic (and Latin script g)
    **dict(zip("АВЕКМНОРСТХЅІЈҮԚԜӀЗ", "ABEKMHOPCTXSIJYQWI3", strict=True)),
    **dict(zip("αορινκυχγ", "aopivkuxy", strict=True)),                       # Greek
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),
})
_DIGIT_ALIKE = str.maketrans({"0": "o", "1": "l", "i": "l", "ı": "l", "|": "l"})  # after casefold: I is i
_LOOK_ALIKE_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_INVISIBLE = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}  # controls, format (bidi overrides, zero widths), unassigned


def visible_text(text: str) -> str:
    """`text` NFKC-normalised, every run of blanks one space, without control, format (bidi overrides, zero
    widths) or unassigned characters, and trimmed."""
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text))
    return "".join(ch for ch in text if unicodedata.category(ch) not in _INVISIBLE).strip()


def look_alike_skeleton(text: str) -> str:
    """What a name looks like: two names with the same skeleton are easily taken for each other
    ("ѕtudent 2" with a Cyrillic ѕ and "student 2"; "Ada L" and "ADA l"; "l0la" and "lola")."""
    out = visible_text(text).translate(_LOOK_ALIKE).casefold().translate(_DIGIT_ALIKE)
    for pair, single in _LOOK_ALIKE_PAIRS:
        out = out.replace(pair, single)
    return out
