"""Bounded, process-wide memo tables: answers that are the same every time for the same key.

The hot paths keep a few such answers (a session's decoded text, a user's session hash, a
template tag's URL, SQL with SQLite's placeholders). Each table holds at most `limit` keys and is
emptied when full (the keys in use come back at their next use, so memory stays bounded whatever
the keys are). A table whose answers depend on settings is emptied when one changes (tests'
`override_settings`), as Django resets what depends on them.
"""

from django.core.signals import setting_changed


class Memo:
    def __init__(self, limit: int, *, settings: bool = False) -> None:
        self.limit = limit
        self._kept: dict = {}
        if settings:
            setting_changed.connect(self._forget, weak=False)

    def _forget(self, **kwargs) -> None:
        self._kept.clear()

    def get(self, key):
        return self._kept.get(key)

    def put(self, key, value) -> None:
        if len(self._kept) >= self.limit:
            self._kept.clear()
        self._kept[key] = value

    def __contains__(self, key) -> bool:
        return key in self._kept

    def __len__(self) -> int:
        return len(self._kept)

    def __iter__(self):
        return iter(self._kept)


class SettingsSnapshot:
    """Settings read on every request, as plain attributes: `snapshot.STATIC_URL` is an instance
    attribute read (~30 ns) where `settings.STATIC_URL` is a Python call of Django's
    `LazyObject.__getattribute__` (~280 ns), ~26 of them a list call. A value is read from the
    settings at its first use and forgotten when Django says it changed (`setting_changed`: sent by
    `override_settings` and pytest-django's `settings` fixture, on entering and on leaving), so the
    next read sees the new value. Upper-case names only, as settings are."""

    def __init__(self) -> None:
        setting_changed.connect(self._forget, weak=False)

    def __getattr__(self, name: str):
        if not name.isupper():
            raise AttributeError(name)
        from django.conf import settings

        value = getattr(settings, name)
        self.__dict__[name] = value
        return value

    def _forget(self, *, setting: str, **kwargs) -> None:
        self.__dict__.pop(setting, None)


# The one snapshot of the request path's settings (autobot/middleware.py, handler.py, bodylimit.py).
request_settings = SettingsSnapshot()
