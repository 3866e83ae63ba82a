"""`{% extends %}` (autobot/templating.py): the parent's blocks found once per compiled template,
the output Django's own."""

import pytest
from django.template import Context, Engine, engines

from autobot import templating

LAYOUTS = {
    "root.html": "<h1>{% block title %}Root{% endblock %}</h1>{% if show %}<nav>{% block nav %}n{% endblock %}"
                 "</nav>{% endif %}{% for i in items %}{% block item %}[{{ i }}]{% endblock %}{% endfor %}"
                 "{% block body %}{% endblock %}",
    "middle.html": "{% extends 'root.html' %}{% block title %}Middle, {{ block.super }}{% endblock %}"
                   "{% block body %}<main>{% block content %}m{% endblock %}</main>{% endblock %}",
    "page.html": "{% extends 'middle.html' %}{% block content %}{{ block.super }}+page {{ who }}{% endblock %}"
                 "{% block nav %}N{% endblock %}",
    "other.html": "{% extends 'root.html' %}{% block body %}other{% endblock %}",
    "by_variable.html": "{% extends parent %}{% block title %}V{% endblock %}",
}


def _engine(builtins):
    loaders = [("django.template.loaders.cached.Loader", [("django.template.loaders.locmem.Loader", LAYOUTS)])]
    return Engine(loaders=loaders, builtins=builtins)


@pytest.mark.parametrize("name", ["page.html", "middle.html", "other.html", "root.html", "by_variable.html"])
def test_the_output_is_django_s(name):
    ours, django = _engine(["autobot.templating"]), _engine([])
    for show in (True, False):
        for parent in ("root.html", "middle.html"):
            context = {"show": show, "items": [1, 2], "who": "<you>", "parent": parent}
            expected = django.get_template(name).render(Context(context))
            for _ in range(3):  # the kept blocks serve later renderings, of this page and others
                assert ours.get_template(name).render(Context(context)) == expected


def test_a_parent_template_is_walked_once_and_a_new_one_anew():
    engine = _engine(["autobot.templating"])
    page = engine.get_template("other.html")
    assert isinstance(page.nodelist[0], templating.ExtendsNode)
    root = engine.get_template("root.html")
    page.render(Context({}))
    kept = templating._parents_blocks[root]
    assert set(kept) == {"title", "nav", "item", "body"}
    page.render(Context({}))
    assert templating._parents_blocks[root] is kept
    engine.template_loaders[0].reset()  # a template loaded anew is a new object: found anew
    engine.get_template("other.html").render(Context({}))
    assert engine.get_template("root.html") is not root


def test_the_site_s_templates_use_it():
    backend = engines.all()[0]
    assert isinstance(backend.get_template("chat/index.html").template.nodelist[0], templating.ExtendsNode)


def test_extends_keeps_django_s_checks():
    from django.template import TemplateSyntaxError

    engine = _engine(["autobot.templating"])
    with pytest.raises(TemplateSyntaxError):
        engine.from_string("{% extends 'root.html' %}{% extends 'root.html' %}")
    with pytest.raises(TemplateSyntaxError):
        engine.from_string("x{% if 1 %}{% endif %}{% extends 'root.html' %}")
    with pytest.raises(TemplateSyntaxError):
        engine.from_string("{% extends %}")
