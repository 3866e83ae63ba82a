"""`autobot.memo.Memo`: the hot paths' remembered answers stay bounded, and those that depend on
settings are forgotten when one changes."""

from django.test import override_settings

from autobot.memo import Memo


def test_a_full_table_empties_and_keeps_what_comes_next():
    memo = Memo(3)
    for n in range(3):
        memo.put(n, str(n))
    assert len(memo) == 3 and memo.get(2) == "2"
    memo.put(3, "3")  # full: emptied, then kept
    assert len(memo) == 1 and memo.get(3) == "3" and memo.get(0) is None


def test_a_setting_change_forgets_only_what_depends_on_settings():
    by_settings, plain = Memo(10, settings=True), Memo(10)
    by_settings.put("url", "/a/")
    plain.put("sql", "SELECT ?")
    with override_settings(STATIC_URL="/elsewhere/"):
        assert by_settings.get("url") is None
    assert plain.get("sql") == "SELECT ?" and "sql" in plain


def test_the_settings_snapshot_follows_a_changed_setting_in_and_out(settings):
    from autobot.memo import SettingsSnapshot

    snapshot = SettingsSnapshot()
    assert snapshot.STATIC_URL == settings.STATIC_URL  # read, then kept
    with override_settings(STATIC_URL="/elsewhere/"):
        assert snapshot.STATIC_URL == "/elsewhere/"
    assert snapshot.STATIC_URL == settings.STATIC_URL
    settings.MAX_REQUEST_BYTES = 4096  # pytest-django's fixture sends the same signal
    assert snapshot.MAX_REQUEST_BYTES == 4096


def test_the_settings_snapshot_has_only_settings():
    import pytest

    from autobot.memo import SettingsSnapshot

    snapshot = SettingsSnapshot()
    for name in ("_private", "lower", "NO_SUCH_SETTING"):
        with pytest.raises(AttributeError):
            getattr(snapshot, name)
