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
