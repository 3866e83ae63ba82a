"""The plain-text reader (knowledge/htmltext.py), for pages too complex to parse into a tree."""

import pytest

from knowledge.htmltext import plain_text


def words(html: str) -> list[str]:
    return plain_text(html).text.split()


@pytest.mark.parametrize(
    "foreign",
    [
        pytest.param("<svg><script/></svg>", id="self-closed-script"),
        pytest.param("<svg><style/></svg>", id="self-closed-style"),
        pytest.param("<svg><script>draw()</svg>", id="script-closed-by-svg"),
        pytest.param("<svg><script><![CDATA[ if (a < b) {} ]]></script></svg>", id="script-with-cdata"),
        pytest.param("<svg><script>draw()", id="script-left-by-an-html-tag"),  # the <p> below leaves the SVG
        pytest.param("<math><style/></math>", id="mathml"),
    ],
)
def test_a_script_or_style_inside_svg_or_mathml_hides_nothing_after_it(foreign):
    # In SVG and MathML a <script> is no raw text: <script/> closes at once, and a <script>'s
    # content ends with the SVG (as lexbor's tree shows), not at a </script> that may never come.
    assert words(f"<p>before</p>{foreign}<p>after</p>") == ["before", "after"]


def test_what_a_script_inside_svg_holds_stays_hidden():
    assert words("<svg><script>steal(<a>document</a>)</script><text>label</text></svg>after") == ["label", "after"]


def test_html_inside_an_svg_integration_point_has_raw_text_again():
    page = '<svg><foreignObject><script>var a = "<p>hidden</p>";</script>seen</foreignObject></svg>after'
    assert words(page) == ["seen", "after"]


def test_a_script_inside_noscript_does_not_end_the_noscript():
    # As the tree reading drops all of <noscript> (knowledge/extract.py's _NOISE).
    assert words("<noscript><script>x()</script>enable javascript</noscript>shown") == ["shown"]


def test_links_are_read_from_the_href_attribute_itself():
    page = '<a title="not href=/bad" href="/good">one</a> <a HREF=/first href=/second>two</a> <a rel=nofollow href=/n>'
    assert plain_text(page).links == ["/good", "/first"]


def test_robots_directives_come_from_a_robots_meta_tag_only():
    page = '<meta name="description" content="noindex"><meta NAME=Robots CONTENT="NoFollow">'
    assert plain_text(page).robots.split() == ["nofollow"]
