"""`manage.py check --deploy` sees our (subclassed, inline) security middleware: no false
"middleware missing" warnings, and the HSTS / SSL-redirect warnings it should give."""

import os
import secrets
import subprocess
import sys

from django.core.checks import run_checks
from django.test import override_settings

from tests.e2e.conftest import ROOT

PRODUCTION = {
    "AUTOBOT_SECRET_KEY": secrets.token_urlsafe(50),
    "AUTOBOT_ALLOWED_HOSTS": "autobot.example.com",
    "AUTOBOT_SECURE_COOKIES": "true",
    "AUTOBOT_HSTS_SECONDS": "31536000",
    "AUTOBOT_HSTS_INCLUDE_SUBDOMAINS": "true",
    "AUTOBOT_HSTS_PRELOAD": "true",
    "AUTOBOT_SSL_REDIRECT": "true",
    "AUTOBOT_TRUST_X_FORWARDED_PROTO": "true",
}


def _deploy_ids() -> set[str]:
    return {message.id for message in run_checks(include_deployment_checks=True)}


def test_our_middleware_counts_as_djangos():
    ids = _deploy_ids()
    assert not {"autobot.W001", "autobot.W002", "autobot.W003"} & ids


def test_without_tls_settings_hsts_and_ssl_redirect_are_reported():
    ids = _deploy_ids()
    assert {"security.W004", "security.W008"} <= ids


def test_a_missing_middleware_is_still_reported():
    from django.conf import settings

    without = [m for m in settings.MIDDLEWARE if not m.endswith(("SecurityMiddleware", "CsrfViewMiddleware"))]
    with override_settings(MIDDLEWARE=without):
        ids = _deploy_ids()
    assert {"autobot.W001", "autobot.W003"} <= ids
    assert "security.W004" not in ids  # without the middleware HSTS is moot, as Django says


def test_production_settings_pass_check_deploy(tmp_path):
    env = {**os.environ, **PRODUCTION, "AUTOBOT_VAR_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_tls_settings_send_hsts_and_redirect(client):
    with override_settings(SECURE_HSTS_SECONDS=3600, SECURE_SSL_REDIRECT=True,
                           SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        plain = client.get("/api/health")
        assert plain.status_code == 301 and plain["Location"].startswith("https://")
        secure = client.get("/api/health", headers={"X-Forwarded-Proto": "https"})
    assert secure["Strict-Transport-Security"] == "max-age=3600"
    assert secure["X-Content-Type-Options"] == "nosniff"
    assert secure["Referrer-Policy"] == "same-origin"
