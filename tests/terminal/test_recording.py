"""terminal/recording.py: the output's JSON made once for the socket's frame and the recording."""

import json

from terminal.recording import output_json


def test_the_same_text_twice_gives_what_json_dumps_writes_both_times():
    text = "".join(chr(c) for c in range(0x00, 0x80)) + "é\u2028\U0001f600" * 1000
    assert output_json(text) == json.dumps(text, ensure_ascii=False)
    assert output_json(text) == json.dumps(text, ensure_ascii=False)  # remembered


def test_an_equal_but_new_text_and_others_in_between_are_encoded_afresh():
    first = "".join(["out", "put \"1\""])
    assert output_json(first) == json.dumps(first, ensure_ascii=False)
    for other in ("a\\b", "\ud800", "", first + "!"):
        assert output_json(other) == json.dumps(other, ensure_ascii=False)
    again = "".join(["out", "put \"1\""])  # equal, another object
    assert again is not first
    assert output_json(again) == json.dumps(first, ensure_ascii=False)
