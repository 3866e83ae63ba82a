"""Django's middleware-dependent deploy checks, run against our middleware.

Django finds its security, CSRF and clickjacking middleware by dotted path. Ours
(autobot/middleware.py) are async subclasses of those classes, so Django reported them missing
(security.W001-W003) and, believing them absent, skipped the checks that depend on them (HSTS,
SSL redirect, nosniff, referrer and opener policies, X-Frame-Options DENY, the CSRF cookie).
(The session cookie checks need only the sessions app, so Django still runs those itself.) Settings
silence W001-W003; here the same checks run with each of our classes standing in for the Django
class it subclasses, so a real omission is still reported (as autobot.W001-W003) and the
settings checks report exactly what Django would.
"""

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.core.checks.security import base, csrf
from django.test.utils import override_settings
from django.utils.module_loading import import_string

GUARDED = {
    "django.middleware.security.SecurityMiddleware": "autobot.W001",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "autobot.W002",
    "django.middleware.csrf.CsrfViewMiddleware": "autobot.W003",
}
SETTINGS_CHECKS = (
    base.check_sts,
    base.check_sts_include_subdomains,
    base.check_sts_preload,
    base.check_content_type_nosniff,
    base.check_ssl_redirect,
    base.check_xframe_deny,
    base.check_referrer_policy,
    base.check_cross_origin_opener_policy,
    csrf.check_csrf_cookie_secure,
)


def as_django_path(path: str) -> str:
    """The Django middleware `path` stands in for (its dotted path if it is one of them)."""
    try:
        cls = import_string(path)
    except ImportError:
        return path
    for django_path in GUARDED:
        if isinstance(cls, type) and issubclass(cls, import_string(django_path)):
            return django_path
    return path


@register(Tags.security, deploy=True)
def middleware_checks(app_configs, **kwargs):
    middleware = [as_django_path(path) for path in settings.MIDDLEWARE]
    messages = [
        Warning(f"{django_path} (or a subclass of it) is not in MIDDLEWARE", id=check_id)
        for django_path, check_id in GUARDED.items() if django_path not in middleware
    ]
    # The settings are swapped only for the duration of this call, at start-up or `check`.
    with override_settings(MIDDLEWARE=middleware):
        for check in SETTINGS_CHECKS:
            messages.extend(check(app_configs))
    return messages
