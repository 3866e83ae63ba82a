"""Static files storage whose URLs are worked out once per name.

Every page asks for its stylesheets, scripts and icon with `{% static %}`, and each call joins
and quotes the URL afresh (`FileSystemStorage.url`: `urljoin` + `filepath_to_uri`, ~9 µs; five
or more a page). A static file's URL depends only on its name and the settings, which do not
change while the process runs, so it is kept after the first time. The names come from the
templates (a fixed set); the memo is bounded all the same.
"""

from django.contrib.staticfiles.storage import StaticFilesStorage as _StaticFilesStorage

MAX_NAMES = 2048


class StaticFilesStorage(_StaticFilesStorage):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[str, str] = {}

    def url(self, name) -> str:
        url = self._urls.get(name)
        if url is None:
            url = super().url(name)
            if len(self._urls) < MAX_NAMES:
                self._urls[name] = url
        return url
