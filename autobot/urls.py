import importlib.util

from django.contrib import admin
from django.urls import include, path, re_path

from autobot import api, views
from autobot.http import API_PREFIX


def _app_pages(app: str):
    """An app's own pages once it has them; until then an honest "coming" page."""
    if importlib.util.find_spec(f"{app}.urls") is not None:
        return path(f"{app}/", include(f"{app}.urls"))
    return path(f"{app}/", views.coming_soon(app), name=f"{app}-index")


_API_ROOT = API_PREFIX.removeprefix("/")  # Django's patterns have no leading slash

urlpatterns = [
    # The API first: it takes most requests, and no other pattern starts with "api/".
    path(_API_ROOT, include(*api.urls())),
    re_path(f"^{_API_ROOT}", views.api_not_found),
    path("", views.dashboard, name="dashboard"),
    path("tokens/", views.tokens_page, name="tokens"),
    path("favicon.ico", views.favicon),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    # One login page for the whole site, so every login is audited the same way.
    path("admin/login/", views.admin_login),
    path("admin/logout/", views.LogoutView.as_view()),
    path("admin/", admin.site.urls),
    path("metrics", views.metrics_view, name="metrics"),
    *[_app_pages(app) for app in ("chat", "terminal", "knowledge", "files", "agents")],
]
