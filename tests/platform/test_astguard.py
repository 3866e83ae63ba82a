"""Tracebacks formatted in several threads at once: every `ast.parse` (which Python 3.11's
traceback carets use) returns its tree instead of a SystemError (autobot/astguard.py)."""

import ast
import sys
import threading
import traceback

from autobot import astguard

SOURCE = open(ast.__file__).read()  # noqa: SIM115 - read once at import, a few hundred lines


class _Cycle:
    def __del__(self):  # a finalizer: Python code run mid-conversion, a point to switch threads
        pass


def _parse_many(errors: list) -> None:
    for _ in range(30):
        try:
            ast.parse(SOURCE)
        except SystemError as exc:
            errors.append(exc)
            return


def _make_garbage() -> None:
    for _ in range(30_000):
        cycle = _Cycle()
        cycle.self = cycle


def _run_together(*targets) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)


def test_installed_on_the_pythons_that_need_it():
    assert astguard.affected((3, 11, 7)) and astguard.affected((3, 12, 1))
    assert not astguard.affected((3, 11, 8)) and not astguard.affected((3, 12, 2))
    assert not astguard.affected((3, 13, 0))
    assert (ast.parse is astguard._serialized_parse) == astguard.affected()  # by the app's ready()


def test_a_parse_waits_no_longer_than_its_limit_for_a_held_lock(monkeypatch):
    monkeypatch.setattr(astguard, "WAIT_SECONDS", 0.05)
    held, release = threading.Event(), threading.Event()

    def hold():
        with astguard._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(10)
        assert astguard._serialized_parse("x = 1").body[0].targets[0].id == "x"  # parsed, unguarded
    finally:
        release.set()
        holder.join()


def test_parses_in_several_threads_at_once_all_succeed(monkeypatch):
    monkeypatch.setattr(ast, "parse", astguard._serialized_parse)  # as installed where needed
    errors: list = []
    _run_together(*[lambda: _parse_many(errors)] * 3, _make_garbage)
    assert errors == []


def test_tracebacks_formatted_in_several_threads_keep_their_carets():
    texts: list = []

    def fail_and_format():
        for _ in range(200):
            try:
                {}["missing"]
            except KeyError:
                texts.append(traceback.format_exc())

    _run_together(fail_and_format, fail_and_format, _make_garbage)
    assert len(texts) == 400
    assert all("KeyError: 'missing'" in text and "SystemError" not in text for text in texts)
