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


# ---- {% static %} (autobot/static_tags.py) and {% url %} (autobot/templating.py) -----------------

SITE_TAGS = ("<link href=\"{% static 'css/app.css' %}\"><img src=\"{% static name %}\">"
             "{% static 'a b&c.js' as kept %}[{{ kept }}]<form action=\"{% url 'logout' %}\">"
             "{% autoescape off %}{% static 'x&y.css' %}{% endautoescape %}")


def _site_and_django(**context):
    """The site's engine and Django's stock tags (no builtins, Django's `static` library), rendered."""
    site = engines.all()[0].engine
    stock = Engine(builtins=["django.templatetags.static"])
    context.setdefault("name", "img/logo & more.svg")
    return site.from_string(SITE_TAGS).render(Context(context)), stock.from_string(SITE_TAGS).render(Context(context))


def test_static_and_url_render_as_django_s_every_time():
    for _ in range(3):  # the first rendering works the URLs out, the later ones are kept
        ours, django = _site_and_django()
        assert ours == django
        assert "/static/css/app.css" in ours and "logo%20%26%20more.svg" in ours
        assert 'action="/accounts/logout/"' in ours
    from autobot import static_tags

    assert ("css/app.css", True) in static_tags._rendered and ("x&y.css", False) in static_tags._rendered
    assert any(key[0] == "logout" for key in templating._urls)  # the site's engine used the kept ones


def test_a_changed_setting_gives_the_new_static_url(settings):
    _site_and_django()
    settings.STATIC_URL = "/assets/"
    ours, django = _site_and_django()
    assert ours == django and "/assets/css/app.css" in ours


def test_a_storage_other_than_autobot_s_is_asked_every_time(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    from autobot import static_tags

    ours, django = _site_and_django()
    assert ours == django and not static_tags._rendered


def test_url_follows_the_urlconf_and_the_script_prefix(settings):
    from django.urls import NoReverseMatch, clear_script_prefix, set_script_prefix

    _site_and_django()
    set_script_prefix("/autobot/")
    try:
        ours, django = _site_and_django()
        assert ours == django and 'action="/autobot/accounts/logout/"' in ours
    finally:
        clear_script_prefix()
    settings.ROOT_URLCONF = "tests.platform.urls_other"
    with pytest.raises(NoReverseMatch):  # no 'logout' there: Django's error, nothing kept
        _site_and_django()


def test_no_template_of_the_site_loads_django_s_static_tag_over_the_kept_one():
    from pathlib import Path

    from django.conf import settings

    loading = [str(path) for folder in settings.TEMPLATES[0]["DIRS"] for path in Path(folder).rglob("*.html")
               if "load static" in path.read_text()]
    assert loading == []


def test_url_reverses_for_the_request_s_current_app_as_django_does():
    from django.template import RequestContext
    from django.test import RequestFactory
    from django.urls import resolve

    site = engines.all()[0].engine
    stock = Engine()
    text = "{% url 'logout' %}|{% url 'admin:index' %}"
    request = RequestFactory().get("/admin/")
    for setup in (lambda r: None, lambda r: setattr(r, "resolver_match", resolve("/admin/")),
                  lambda r: setattr(r, "current_app", "admin")):
        setup(request)
        for _ in range(2):
            assert site.from_string(text).render(RequestContext(request)) == \
                stock.from_string(text).render(RequestContext(request))
    assert templating._current_app(Context({})) is None


def test_djangos_csrf_processor_is_left_out_only_when_ours_replaces_it(settings):
    """Ours gives `csrf_token` after Django's built-in one would: the same context, one lazy token
    less. Without ours configured, Django's runs as before."""
    from django.template.context_processors import csrf as djangos

    from autobot import csrf

    site = engines.all()[0].engine
    assert djangos not in site.template_context_processors
    assert csrf.context_processor in site.template_context_processors
    options = dict(settings.TEMPLATES[0]["OPTIONS"])
    options["context_processors"] = [
        path for path in options["context_processors"] if path != templating.OUR_CSRF_PROCESSOR]
    params = {"NAME": "without", "DIRS": [], "APP_DIRS": False, "OPTIONS": options}
    assert templating.DjangoTemplates(params).engine.template_context_processors[0] is djangos


def test_a_page_s_csrf_token_is_ours(rf):
    from django.template import RequestContext

    from autobot.csrf import LazyToken

    request = rf.get("/")
    request.META["CSRF_COOKIE"] = "a" * 32
    context = RequestContext(request)
    with context.bind_template(engines.all()[0].from_string("").template):
        assert isinstance(context["csrf_token"], LazyToken)
