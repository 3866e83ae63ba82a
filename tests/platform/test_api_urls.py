"""The API's URL patterns are grouped by app for the resolver (autobot/api.py, `grouped_urls`):
every API URL must resolve and reverse exactly as with ninja's flat list."""

import re
from functools import partial

from django.urls import NoReverseMatch, Resolver404, URLPattern, get_resolver, include, path, re_path
from django.urls.resolvers import RoutePattern, URLResolver

from autobot import api as api_module
from autobot import views
from autobot.api import api, grouped_urls

CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
SAMPLES = {"int": "7", "uuid": "0b3a6c8e-1111-2222-3333-444455556666", "path": "a/b", "": "x1", None: "x1", "str": "x1"}


def _flat_resolver() -> URLResolver:
    """The API mounted as it was: ninja's flat list, before the project's other patterns."""
    return URLResolver(RoutePattern("/"), [path("api/", api.urls), re_path(r"^api/", views.api_not_found)])


def _samples() -> list[tuple[URLPattern, str, dict]]:
    result = []
    for pattern in api.urls[0]:
        route = str(pattern.pattern)
        kwargs = {name: SAMPLES[kind] for kind, name in CONVERTER.findall(route)}
        result.append((pattern, "/api/" + CONVERTER.sub(lambda m: SAMPLES[m.group(1)], route), kwargs))
    return result


def _match(resolver, url):
    try:
        match = resolver.resolve(url)
    except Resolver404:
        return None
    func = match.func
    if isinstance(func, partial):  # ninja's docs views: a new partial each time api.urls is read
        func = (func.func, func.args, func.keywords)
    elif func.__closure__:  # ninja's operation views: a new wrapper of the same PathView each time
        func = (func.__qualname__, tuple(cell.cell_contents for cell in func.__closure__))
    return (func, match.args, match.kwargs, match.url_name, match.route, match.namespaces, match.app_names,
            match.view_name)


def test_every_api_url_resolves_as_with_the_flat_list():
    flat, project = _flat_resolver(), get_resolver()
    samples = _samples()
    assert len(samples) > 40
    for _pattern, url, _kwargs in samples:
        for probe in (url, url + "/", url + "/extra", url.rstrip("/") + "x"):
            assert _match(project, probe) == _match(flat, probe), probe
    assert _match(project, "/api/chat/sessions")[4] == "api/chat/sessions"  # the metrics label


def test_every_api_name_reverses_as_with_the_flat_list():
    flat, project = _flat_resolver(), get_resolver()
    for pattern, _url, kwargs in _samples():
        for args in (kwargs, {}):
            def reverse(resolver, pattern=pattern, args=args):
                try:
                    return resolver.namespace_dict["api"][1].reverse(pattern.name, **args)
                except NoReverseMatch:
                    return None
            assert reverse(project) == reverse(flat), (pattern.name, args)


def test_each_app_is_one_group_and_nothing_is_lost():
    patterns = api.urls[0]
    grouped = grouped_urls(patterns)
    prefixes = [str(p.pattern) for p in grouped if isinstance(p, URLResolver)]
    assert {"chat/", "knowledge/", "terminal/", "files/", "agents/"} <= set(prefixes)
    assert len(prefixes) == len(set(prefixes))
    assert sum(len(p.url_patterns) if isinstance(p, URLResolver) else 1 for p in grouped) == len(patterns)
    assert api_module.urls()[1] == "api"


def test_a_pattern_led_by_a_converter_keeps_the_flat_order():
    def view(request):
        return None

    patterns = [path("chat/a", view, name="a"), path("<slug>/b", view, name="b"), path("chat/b", view, name="c")]
    assert grouped_urls(patterns) == patterns
    grouped = grouped_urls([path("x/a", view, name="a"), path("y", view, name="y"), path("x/b", view, name="b")])
    resolver = URLResolver(RoutePattern(""), [path("", include(grouped))])
    assert resolver.resolve("x/b").url_name == "b"
    assert resolver.resolve("y").url_name == "y"


def test_every_api_url_name_is_unique_and_names_its_app():
    names = [pattern.name for pattern in api.urls[0] if pattern.name]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    assert not duplicated
    resolver = get_resolver()
    assert resolver.resolve("/api/chat/sessions").url_name.startswith("chat_")
    assert resolver.resolve("/api/knowledge/entries").url_name.startswith("knowledge_")
    assert resolver.resolve("/api/health").url_name.startswith("platform_")
