"""autobot.http.json_string writes what json.dumps(text, ensure_ascii=False) writes: the terminal's
output frames and recording lines are made with it, and must not change by a character."""

import json
import random

from autobot.http import json_string

# Every kind of character the escaping treats apart: controls, quote, backslash, DEL, C1,
# the JavaScript line separators, other BMP text, astral characters.
ALPHABET = [chr(c) for c in range(0x00, 0x80)] + ["\x85", "\xa0", "é", "\u2028", "\u2029", "\ufeff", "中",
                                                   "\U0001f600", "\U0010ffff"]


def test_it_writes_what_json_dumps_writes():
    rng = random.Random(15)
    for length in (0, 1, 2, 7, 64, 1000, 70_000):
        for _ in range(20 if length < 70_000 else 2):
            text = "".join(rng.choice(ALPHABET) for _ in range(length))
            assert json_string(text) == json.dumps(text, ensure_ascii=False)


def test_terminal_output_as_a_flood_sends_it():
    text = ("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n" * 2000) + "\x1b[0m\x1b]0;title\x07é"
    assert json_string(text) == json.dumps(text, ensure_ascii=False)


def test_a_lone_surrogate_goes_json_s_way():
    # Client JSON can carry "\ud800" (recorded as typed input): the quick encoder refuses it.
    for text in ("\ud800", "a\udfffb", "x" * 5000 + "\ud83d"):
        assert json_string(text) == json.dumps(text, ensure_ascii=False)
