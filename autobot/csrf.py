"""The CSRF token a page renders, masked with one read of the OS's random source.

Every page renders `{{ csrf_token }}` (base.html), and Django masks the cookie's secret afresh
each time (BREACH: the token in the page differs on every response): `_mask_cipher_secret` draws
its 32 mask characters with `get_random_string`, one `secrets.choice` (a system random call) per
character, ~45 µs of a page's ~1.2 ms of CPU. `mask` below draws the same mask, 32 characters
each uniform over the 62 allowed and independent, from one `secrets.token_bytes` call: each byte
below 248 (4 × 62) is kept and taken modulo 62, the others are dropped, so no character is more
likely than another. The token is Django's format exactly (mask, then each secret character
shifted by the mask's), checked on a POST by Django's `CsrfViewMiddleware` unchanged.

`context_processor` (settings, TEMPLATES) puts this token in the templates' context as
`csrf_token`, in place of the one Django's built-in processor provides (processors listed in the
settings run after the built-in one, so theirs wins): lazy as Django's, so a page that does not
render it does not set the cookie. `{% csrf_token %}` reads the same variable.
`LazyToken` is that lazy value, read without the proxy's costs (its docstring).
`tests/platform/test_csrf_mask.py` fails when Django's `get_token`, `_mask_cipher_secret` or
its csrf context processor change, so a new Django version gets looked at.
"""

import operator
import secrets

from django.middleware import csrf as django_csrf
from django.utils.html import escape
from django.utils.safestring import SafeString

_CHARS = django_csrf.CSRF_ALLOWED_CHARS  # 62 letters and digits
_LENGTH = django_csrf.CSRF_SECRET_LENGTH  # 32
_KEPT = 256 - 256 % len(_CHARS)  # 248: bytes below it are uniform modulo 62
_DROPPED = bytes(range(_KEPT, 256))
_MODULO = bytes(byte % len(_CHARS) for byte in range(256))  # a byte -> a character's index
# An index, or the sum of two (up to 122) -> the character at that index modulo 62.
_CHARACTER = bytes(ord(_CHARS[value % len(_CHARS)]) for value in range(256))
# A character -> its index; a byte that is not an allowed character is dropped (`_indices`).
_INDEX = bytes(_CHARS.index(chr(byte)) if chr(byte) in _CHARS else 0 for byte in range(256))
_NOT_ALLOWED = bytes(byte for byte in range(256) if chr(byte) not in _CHARS)


def _random_indices() -> bytes:
    """_LENGTH indices, each uniform over the allowed characters' and independent (rejection
    sampling: a byte of 248 or more is dropped, not folded onto the others)."""
    indices = b""
    while len(indices) < _LENGTH:  # 40 bytes keep 32 or more all but ~1 time in 10,000
        indices += secrets.token_bytes(_LENGTH + 8).translate(_MODULO, _DROPPED)
    return indices[:_LENGTH]


def mask(secret: str) -> str:
    """Django's `_mask_cipher_secret(secret)`: a new random mask, then the secret ciphered with it.
    A secret that is not 32 allowed characters (Django never makes one) goes to Django's."""
    try:
        raw = secret.encode("ascii")
    except (AttributeError, UnicodeEncodeError):
        return django_csrf._mask_cipher_secret(secret)
    secret_indices = raw.translate(_INDEX, _NOT_ALLOWED)
    if len(raw) != _LENGTH or len(secret_indices) != _LENGTH:
        return django_csrf._mask_cipher_secret(secret)
    mask_indices = _random_indices()
    cipher = bytes(map(operator.add, secret_indices, mask_indices))
    return (mask_indices + cipher).translate(_CHARACTER).decode("ascii")


def get_token(request) -> str:
    """Django's `get_token`, masking with `mask`: the cookie's secret masked afresh, and the cookie
    sent again with the response (renewing its expiry), as Django does. Without a secret yet (no
    valid cookie came), Django's own makes one."""
    if "CSRF_COOKIE" not in request.META:
        return django_csrf.get_token(request)
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    return mask(request.META["CSRF_COOKIE"])


class LazyToken:
    """The page's masked token, made at its first use as Django's `SimpleLazyObject` makes it: a
    page that does not render it leaves the cookie alone. Unlike that proxy, rendering it does not
    go through an attribute lookup that raises and catches AttributeError at each step
    (`{{ csrf_token }}` and `{% csrf_token %}` cost ~85,000 and ~125,000 instructions through it):
    `__html__` gives the escaped token (letters and digits: the token itself, made a SafeString
    once, so neither `{{ csrf_token }}` nor `{% csrf_token %}` escapes it again; ~8,000
    instructions each), and `{% csrf_token %}` (autobot/templating.py's `CsrfTokenNode`) writes its
    field without `format_html` and the truth and `== "NOTPROVIDED"` tests, which a made token never
    fails.
    Anything else asked of it is asked of the token string (`__getattr__`, `len`, indexing, ...)."""

    __slots__ = ("_request", "_token")

    def __init__(self, request) -> None:
        self._request = request
        self._token = None

    def __str__(self) -> str:
        if self._token is None:
            token = get_token(self._request)
            # Letters and digits (Django's alphabet), which HTML escaping leaves as they are: marked
            # safe, so `{{ csrf_token }}` (which renders `str()` of it) does not escape it again.
            self._token = SafeString(token) if token.isascii() and token.isalnum() else token
        return self._token

    def __html__(self) -> str:
        token = str(self)
        return token if isinstance(token, SafeString) else escape(token)

    def __bool__(self) -> bool:
        return bool(str(self))

    def __eq__(self, other) -> bool:
        return str(self) == (str(other) if isinstance(other, LazyToken) else other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __len__(self) -> int:
        return len(str(self))

    def __getitem__(self, key):
        return str(self)[key]

    def __iter__(self):
        return iter(str(self))

    def __contains__(self, item) -> bool:
        return item in str(self)

    def __getattr__(self, name):
        if name.startswith("_"):  # not a string's method: a slot not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(str(self), name)

    def __repr__(self) -> str:
        return f"<LazyToken {'unmade' if self._token is None else 'made'}>"


def context_processor(request) -> dict:
    """`csrf_token` for templates, as Django's built-in csrf processor gives it (lazily)."""
    return {"csrf_token": LazyToken(request)}
