"""The baseline the API figures are measured against: a stock, minimal Django + django-ninja
project with one async endpoint (no database, no auth, no middleware of ours), served by the
same uvicorn as AutoBot. A ratio against it says how much AutoBot adds on top of the framework.

    uvicorn --app-dir bench stock_app:application      # GET /api/aping → {"ping": "pong"}
    uvicorn --app-dir bench stock_app:raw_application  # the same answer from bare ASGI

Not a benchmark itself: ``make bench`` runs every ``bench/*.py``, so run as a script it only
says so.
"""

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-stock-app-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[
            # Django's startproject defaults that need no database or installed apps.
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from ninja import NinjaAPI  # noqa: E402

api = NinjaAPI(docs_url=None)


@api.get("/aping")
async def aping(request):
    return {"ping": "pong"}


urlpatterns = [path("api/", api.urls)]
application = get_asgi_application()


async def raw_application(scope, receive, send):
    """The floor under both: a bare ASGI app answering every request with a fixed JSON body."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"16")]})
    await send({"type": "http.response.body", "body": b'{"ping": "pong"}'})

if __name__ == "__main__":
    print("bench/stock_app.py: the baseline app other benchmarks serve, nothing to measure")
