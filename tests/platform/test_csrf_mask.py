"""The pages' CSRF token (autobot/csrf.py): Django's format and validation, the mask drawn in one
random read; a page's token accepted on a form post through the application, a wrong or missing
one refused."""

import collections
import hashlib
import inspect
import re

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.middleware import csrf as django_csrf
from django.template import context_processors
from django.test import RequestFactory

from autobot import csrf
from autobot.asgi import application  # here, not in a test: importing it takes a second or more
from tests.conftest import asgi_response

# The sha256 of the sources of what autobot/csrf.py restates: Django's `get_token`,
# `_mask_cipher_secret` and its csrf context processor.
DJANGO_CSRF_SHA256 = "6fd7e19975cb45507bc890f42bef925c02eec2f133ff2d0d3c1b245449422d91"


def django_csrf_sha256() -> str:
    sources = [inspect.getsource(fn) for fn in (django_csrf.get_token, django_csrf._mask_cipher_secret,
                                                context_processors.csrf)]
    return hashlib.sha256("".join(sources).encode()).hexdigest()


def test_what_autobot_csrf_restates_is_django_s_current_code():
    assert django_csrf_sha256() == DJANGO_CSRF_SHA256, (
        "Django's get_token, _mask_cipher_secret or csrf context processor changed: bring "
        "autobot/csrf.py in line with them, then update DJANGO_CSRF_SHA256")


def test_a_masked_secret_unmasks_to_the_secret_in_django_s_format():
    for _ in range(2000):
        secret = django_csrf._get_new_csrf_string()
        token = csrf.mask(secret)
        django_csrf._check_token_format(token)  # raises if not 64 allowed characters
        assert len(token) == django_csrf.CSRF_TOKEN_LENGTH
        assert django_csrf._unmask_cipher_token(token) == secret
        assert django_csrf._does_token_match(token, secret)


def test_the_mask_is_new_each_time_and_spread_over_every_character():
    secret = django_csrf._get_new_csrf_string()
    masks = [csrf.mask(secret)[:32] for _ in range(4000)]
    assert len(set(masks)) == len(masks)
    # Each position takes every one of the 62 characters; none far more often than the others
    # (4,000 draws: ~65 each; a bias as coarse as folding 256 onto 62 would show as ~2x).
    for position in range(32):
        counts = collections.Counter(mask[position] for mask in masks)
        assert set(counts) == set(django_csrf.CSRF_ALLOWED_CHARS)
        assert max(counts.values()) < 2 * min(counts.values()) + 40


@pytest.mark.parametrize("secret", ["short", "x" * 31 + "!", "é" * 32, None])
def test_a_secret_django_would_not_make_goes_to_django_s_mask(secret):
    """Never the case in practice (the middleware replaces a malformed cookie): Django's answer."""
    try:
        expected = django_csrf._mask_cipher_secret(secret)
    except Exception as exc:  # noqa: BLE001 - whatever Django raises, `mask` raises too
        with pytest.raises(type(exc)):
            csrf.mask(secret)
    else:
        assert len(csrf.mask(secret)) == len(expected)


def test_the_token_marks_the_cookie_for_renewal_as_django_s_does():
    request = RequestFactory().get("/")
    request.META["CSRF_COOKIE"] = secret = django_csrf._get_new_csrf_string()
    assert django_csrf._unmask_cipher_token(csrf.get_token(request)) == secret
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True
    fresh = RequestFactory().get("/")  # no cookie came: Django makes the secret
    token = csrf.get_token(fresh)
    assert django_csrf._unmask_cipher_token(token) == fresh.META["CSRF_COOKIE"]


def test_templates_get_this_token_lazily_in_place_of_django_s():
    from django.template import engines

    template = engines.all()[0].from_string("{% if show %}{{ csrf_token }}|{% csrf_token %}{% endif %}")
    request = RequestFactory().get("/")
    request.META["CSRF_COOKIE"] = secret = django_csrf._get_new_csrf_string()
    assert template.render({"show": False}, request) == ""
    assert "CSRF_COOKIE_NEEDS_UPDATE" not in request.META  # not rendered: the cookie is left alone
    shown, field = template.render({"show": True}, request).split("|")
    assert django_csrf._unmask_cipher_token(shown) == secret
    assert f'name="csrfmiddlewaretoken" value="{shown}"' in field  # one token per rendering


def test_the_lazy_token_reads_as_the_token_string_wherever_it_is_used():
    import copy

    from django.template import engines

    request = RequestFactory().get("/")
    request.META["CSRF_COOKIE"] = secret = django_csrf._get_new_csrf_string()
    token = csrf.LazyToken(request)
    assert "CSRF_COOKIE_NEEDS_UPDATE" not in request.META  # made only when used
    text = str(token)
    assert django_csrf._unmask_cipher_token(text) == secret and request.META["CSRF_COOKIE_NEEDS_UPDATE"]
    assert str(token) == text and token == text and token != "NOTPROVIDED" and bool(token)
    assert token.__html__() == text and len(token) == 64 and token[:3] == text[:3] and list(token) == list(text)
    assert text[5] in token and token.upper() == text.upper() and hash(token) == hash(text)
    assert str(copy.copy(token)) == text
    rendered = engines.all()[0].from_string(
        "{{ csrf_token }}|{{ csrf_token|length }}|{{ csrf_token|slice:':4' }}|{{ csrf_token|upper }}").render(
        {}, request)
    shown = rendered.split("|")[0]
    assert rendered == f"{shown}|64|{shown[:4]}|{shown.upper()}"


# ---- through the application: the page's token on a form post ---------------------------------


async def _request(method: str, path: str, cookie: str, body: bytes = b"") -> tuple[int, bytes]:
    headers = [(b"host", b"testserver"), (b"cookie", cookie.encode())]
    if body:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    scope = {"type": "http", "http_version": "1.1", "method": method, "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": body, "more_body": False})
    start, content = await asgi_response(comm)
    return start["status"], content


@pytest.mark.django_db(transaction=True)
async def test_a_page_s_token_is_accepted_on_a_form_post_and_a_wrong_one_refused(owner):
    from tests.platform.test_pages import _session_for

    secret = django_csrf._get_new_csrf_string()
    cookie = f"sessionid={await sync_to_async(_session_for)(owner)}; csrftoken={secret}"
    status, page = await _request("GET", "/chat/", cookie)
    assert status == 200
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.decode()).group(1)
    assert token != secret and django_csrf._unmask_cipher_token(token) == secret
    wrong = token[:32] + csrf.mask(django_csrf._get_new_csrf_string())[32:]
    assert (await _request("POST", "/accounts/logout/", cookie, f"csrfmiddlewaretoken={wrong}".encode()))[0] == 403
    assert (await _request("POST", "/accounts/logout/", cookie, b"x=1"))[0] == 403
    status, _ = await _request("POST", "/accounts/logout/", cookie, f"csrfmiddlewaretoken={token}".encode())
    assert status == 302


# The sha256 of Django's `CsrfTokenNode.render`, whose output autobot/templating.py's writes for our token.
DJANGO_CSRF_TAG_SHA256 = "bef2fc3149e4e786d96dcacdc0ac8f7b1393bd912df61754bb629ee9e9916c22"


def test_the_csrf_token_tag_restates_django_s_current_tag():
    from django.template.defaulttags import CsrfTokenNode

    assert hashlib.sha256(inspect.getsource(CsrfTokenNode.render).encode()).hexdigest() == DJANGO_CSRF_TAG_SHA256, (
        "Django's {% csrf_token %} changed: bring autobot/templating.py's CsrfTokenNode in line, then update "
        "DJANGO_CSRF_TAG_SHA256")


@pytest.mark.filterwarnings("ignore:Calling format_html")  # Django's own tag, for "NOTPROVIDED"
@pytest.mark.parametrize("value", ["lazy", "lazy-odd", "a-view's<&>", "NOTPROVIDED", "", None])
def test_the_csrf_token_tag_writes_what_django_s_writes(value):
    """autobot/templating.py's `{% csrf_token %}` and `{{ csrf_token }}` against Django's tag and
    escaping, for this module's token, a token with characters to escape, and other values."""
    from django.template import Context, Engine, engines
    from django.template.defaulttags import CsrfTokenNode
    from django.utils.html import conditional_escape

    request = RequestFactory().get("/")
    request.META["CSRF_COOKIE"] = django_csrf._get_new_csrf_string()
    if value in ("lazy", "lazy-odd"):
        token = csrf.LazyToken(request)
        if value == "lazy-odd":
            token._token = "<ab&c>"  # never made, but escaped as Django would
        expected = CsrfTokenNode().render(Context({"csrf_token": token}))
        shown = conditional_escape(str(token))
    else:
        token = value
        expected = CsrfTokenNode().render(Context({} if value is None else {"csrf_token": value}))
        shown = Engine().from_string("{{ csrf_token }}").render(Context({} if value is None else {"csrf_token": value}))
    site = engines.all()[0].from_string("{{ csrf_token }}|{% csrf_token %}")
    context = {} if value is None else {"csrf_token": token}
    assert site.template.render(Context(context)) == f"{shown}|{expected}"
    if value == "lazy":
        assert expected.startswith('<input type="hidden" name="csrfmiddlewaretoken" value="') and str(token) in expected
