"""The JSON nesting bound every body and socket frame passes (autobot/http.py json_loads): deeper
than 64 is refused before parsing, brackets inside strings don't count, escapes are read as the
parser reads them, and nothing it lets through can make the parser recurse past its limit."""

import json
import random

import pytest

from autobot.http import MAX_JSON_DEPTH, json_loads, json_too_deep


def nested(depth: int, inner: str = "0") -> str:
    """`depth` arrays and objects, alternating, around `inner`."""
    text = inner
    for level in range(depth):
        text = f"[{text}]" if level % 2 else f'{{"k": {text}}}'
    return text


def depth_of(value) -> int:
    """How deep a parsed value nests (walked without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            level += 1
            deepest = max(deepest, level)
            stack.extend((child, level) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def test_nesting_up_to_the_limit_is_parsed_and_one_more_is_refused():
    assert depth_of(json_loads(nested(MAX_JSON_DEPTH))) == MAX_JSON_DEPTH
    with pytest.raises(ValueError, match="nested deeper than 64"):
        json_loads(nested(MAX_JSON_DEPTH + 1))
    with pytest.raises(ValueError, match="nested deeper than 64"):
        json_loads("[" * 10_000 + "]" * 10_000)


def test_many_shallow_values_are_not_deep():
    assert json_loads("[" + ",".join(["[[]]"] * 5000) + "]") == [[[]]] * 5000
    assert json_loads(json.dumps({"a": [{"b": []}] * 1000}))["a"][999] == {"b": []}


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"type": "message", "content": "[{" * 500 + "]}" * 3})
    assert json_loads(text)["content"].startswith("[{[{")
    # ...but outside a string, one more level than the limit is refused
    assert json_too_deep(nested(MAX_JSON_DEPTH, json.dumps("[" * 200)).encode()) is False
    assert json_too_deep(nested(MAX_JSON_DEPTH + 1, json.dumps("]" * 200)).encode()) is True


def test_escaped_quotes_and_backslashes_are_read_as_the_parser_reads_them():
    # An escaped quote does not end the string: the brackets after it are still text.
    inside = 'say \\"' + "[" * 100 + '\\" twice'
    assert json_loads(f'["{inside}"]') == [inside.replace('\\"', '"')]
    # An escaped backslash before a quote: the quote ends the string, and what follows is structure.
    deep = '["a\\\\", ' + nested(MAX_JSON_DEPTH) + "]"
    with pytest.raises(ValueError, match="nested deeper than 64"):
        json_loads(deep)
    assert json_loads('["a\\\\\\"' + "[" * 100 + '"]') == ['a\\"' + "[" * 100]


def test_an_unterminated_string_hides_the_rest_as_it_does_for_the_parser():
    with pytest.raises(ValueError, match="Unterminated string"):
        json_loads('["open ' + "[" * 500)


def test_a_crafted_frame_of_escaped_quotes_is_refused_at_once():
    # Many backslash-quote pairs with no closing quote: the string scan stays linear.
    with pytest.raises(ValueError, match="nested deeper than 64"):
        json_loads("[" * 65 + '\\"' * 200_000)


def _random_value(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.2:
        return rng.choice([0, None, True, "".join(rng.choice('[]{}"\\ab') for _ in range(rng.randint(0, 6)))])
    children = [_random_value(rng, depth - 1) for _ in range(rng.randint(1, 3))]
    return children if rng.random() < 0.5 else {str(i) + rng.choice('[{"\\'): c for i, c in enumerate(children)}


def test_random_documents_are_refused_exactly_when_deeper_than_the_limit():
    rng = random.Random(7)
    for _ in range(300):
        value = _random_value(rng, rng.randint(1, 6))
        for pad in (0, rng.randint(1, 70)):
            text = nested(pad, json.dumps(value))
            assert json_too_deep(text.encode(), limit=8) == (depth_of(json.loads(text)) > 8), text


def test_on_any_text_it_agrees_with_the_parser_on_what_the_parser_reads():
    """Random bracket, quote and backslash soup, mostly not JSON: of what parses, exactly what
    nests deeper than the limit is refused."""
    rng = random.Random(11)
    parsed = 0
    for _ in range(20_000):
        text = "".join(rng.choice(['[', ']', '{"a":', '}', '"', '\\', ',', '1', '[' * 70, ']' * 70])
                       for _ in range(rng.randint(1, 12)))
        deep = json_too_deep(text.encode(), limit=4)
        try:
            value = json.loads(text)
        except ValueError:
            continue  # not JSON: invalid_json whatever the depth check said
        parsed += 1
        assert deep == (depth_of(value) > 4), text
    assert parsed > 100
    with pytest.raises(ValueError):
        json_loads("[" * 70 + "]" * 70)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32"])
def test_a_utf16_or_utf32_body_is_measured_as_the_parser_reads_it(encoding):
    """The parser reads a body in UTF-16 or UTF-32 when its first bytes say so, and there one
    character can hold the byte of a quote: "Ģ" is 22 01 in UTF-16-LE. Measured byte by byte, that
    byte opened a string that hid every bracket after it, and the parser recursed to its limit."""
    deep = '["\u0122", ' + "[" * 5000 + "]" * 5000 + "]"
    with pytest.raises(ValueError, match="nested deeper than 64"):
        json_loads(deep.encode(encoding))
    assert json_loads('{"a": "\u0122[[", "b": [[1]]}'.encode(encoding)) == {"a": "\u0122[[", "b": [[1]]}
