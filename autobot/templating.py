"""Django's template backend, but a rendering leaves no reference cycle behind.

A `RequestContext` keeps its layers (`ContextDict`s), and each layer keeps the context it is in
(only to pop itself when used as a `with` block): a cycle, with the request and everything the
page was given inside it. Nothing but the cyclic garbage collector frees it, so every page left
its request for a collection to find; under load those collections took a share of the worker's
CPU and, when a full one came due, held the event loop (docs/performance.md, "Eighth round").
Once the rendering is done the layers' back links are dropped, and the context is freed with
the request. What the template sees and returns is Django's. `Template.render` restates Django
5.2's: tests/platform/test_no_cycles.py fails when Django's changes. Django's built-in csrf
context processor is left out when autobot/csrf.py's, which replaces its `csrf_token`, is
configured (`_without_djangos_csrf_processor`).

`{% extends %}` (this module is a template builtin, settings TEMPLATES) is Django's, but for one
walk: on every rendering Django's `ExtendsNode.render` walks the whole parent template (every
node of base.html and the nodes inside them) to find its `{% block %}`s, ~20 µs a page. A
compiled template does not change, so the blocks found are kept per parent template object (a
weak reference: a template loaded anew, as without the cached loader, is walked anew).
`ExtendsNode.render` restates Django 5.2's with that one change; tests/platform/test_no_cycles.py
fails when Django's changes (tests/platform/test_templating.py: the same output as Django's).

`{% url %}` (a builtin here too) is Django's, but a tag with no arguments, rendered to the page
(not `as` a variable), keeps the URL it rendered: reversing a name (the resolver's candidates, a
regular expression, quoting) and escaping cost ~90,000 instructions a tag (base.html's
`{% url 'logout' %}`, on every page). What `reverse` answers depends on the name, the current
app (Django's rule, restated from `URLNode.render`), the URLconf in use, the script prefix and the
resolver, all part of what the URL is kept by: a URLconf changed (`clear_url_caches`, as tests'
`override_settings(ROOT_URLCONF=...)` does) makes a new resolver, so the URL is reversed again. A
name that does not reverse raises as before, and nothing is kept.

`{% csrf_token %}` (a builtin here too) writes autobot/csrf.py's token, already safe, without
Django's tests and `format_html` (`CsrfTokenNode`); any other value is Django's.
"""

import weakref

from django.template import Library, TemplateDoesNotExist
from django.template.backends import django as django_backend
from django.template.backends.django import reraise
from django.template.base import TextNode
from django.template.context import ContextDict, _builtin_context_processors, make_context
from django.template.defaulttags import CsrfTokenNode as DjangoCsrfTokenNode
from django.template.defaulttags import URLNode as DjangoURLNode
from django.template.defaulttags import url as django_url
from django.template.loader_tags import BLOCK_CONTEXT_KEY, BlockContext, BlockNode
from django.template.loader_tags import ExtendsNode as DjangoExtendsNode
from django.template.loader_tags import do_extends as django_do_extends
from django.urls import get_resolver, get_script_prefix, get_urlconf
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString

from autobot.csrf import LazyToken
from autobot.memo import Memo


class DjangoTemplates(django_backend.DjangoTemplates):
    def __init__(self, params):
        super().__init__(params)
        _without_djangos_csrf_processor(self.engine)

    def from_string(self, template_code):
        return Template(super().from_string(template_code).template, self)

    def get_template(self, template_name):
        return Template(super().get_template(template_name).template, self)


class Template(django_backend.Template):
    def render(self, context=None, request=None):
        # Django 5.2's `Template.render`, plus the `finally`.
        context = make_context(context, request, autoescape=self.backend.engine.autoescape)
        try:
            return self.template.render(context)
        except TemplateDoesNotExist as exc:
            reraise(exc, self.backend)
        finally:
            _unlink(context)


def _unlink(context) -> None:
    """Drop each layer's link back to its context: only a `with context.push():` block still
    open would use it, and the rendering that opened any is over."""
    for layer in context.dicts:
        if isinstance(layer, ContextDict):
            layer.context = None


# ---- the context processors --------------------------------------------------------------------

OUR_CSRF_PROCESSOR = "autobot.csrf.context_processor"
DJANGOS_CSRF_PROCESSOR = "django.template.context_processors.csrf"


def _without_djangos_csrf_processor(engine) -> None:
    """Every rendering runs Django's built-in csrf processor before the configured ones
    (`Engine.template_context_processors`); when autobot/csrf.py's is configured, its
    `csrf_token` replaces that one's in the same dict of updates (`RequestContext.bind_template`
    merges the processors' answers in order), so Django's made a lazy token nobody reads: ~16,000
    instructions a page. It is left out then; without ours, or should Django add another built-in
    processor, the engine's list is Django's."""
    if OUR_CSRF_PROCESSOR in engine.context_processors and _builtin_context_processors == (DJANGOS_CSRF_PROCESSOR,):
        engine.template_context_processors = tuple(import_string(path) for path in engine.context_processors)


# ---- {% extends %} ---------------------------------------------------------------------------

register = Library()

_parents_blocks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _blocks_of(parent) -> dict:
    """`{name: BlockNode}` of a compiled root template, found once per template object."""
    blocks = _parents_blocks.get(parent)
    if blocks is None:
        blocks = _parents_blocks[parent] = {n.name: n for n in parent.nodelist.get_nodes_by_type(BlockNode)}
    return blocks


class ExtendsNode(DjangoExtendsNode):
    def render(self, context):
        # Django 5.2's `ExtendsNode.render`, but for `_blocks_of`.
        compiled_parent = self.get_parent(context)

        if BLOCK_CONTEXT_KEY not in context.render_context:
            context.render_context[BLOCK_CONTEXT_KEY] = BlockContext()
        block_context = context.render_context[BLOCK_CONTEXT_KEY]

        # Add the block nodes from this node to the block context
        block_context.add_blocks(self.blocks)

        # If this block's parent doesn't have an extends node it is the root,
        # and its block nodes also need to be added to the block context.
        for node in compiled_parent.nodelist:
            # The ExtendsNode has to be the first non-text node.
            if not isinstance(node, TextNode):
                if not isinstance(node, DjangoExtendsNode):
                    block_context.add_blocks(_blocks_of(compiled_parent))
                break

        # Call Template._render explicitly so the parser context stays
        # the same.
        with context.render_context.push_state(compiled_parent, isolated_context=False):
            return compiled_parent._render(context)


@register.tag("extends")
def do_extends(parser, token):
    """Django's `{% extends %}` (its checks and parsing), making this module's `ExtendsNode`."""
    node = django_do_extends(parser, token)
    return ExtendsNode(node.nodelist, node.parent_name, node.template_dirs)


# ---- {% url %} -------------------------------------------------------------------------------

_urls = Memo(1024, settings=True)


_MISSING = object()


def _current_app(context):
    """The current app `URLNode.render` reverses for: the request's `current_app`, else its
    resolver match's namespace, else None (Django's rule, read with `getattr` defaults, which do
    not raise and catch an AttributeError when the request has no `current_app`, as it never has)."""
    request = getattr(context, "request", None)
    current_app = getattr(request, "current_app", _MISSING)
    if current_app is _MISSING:
        current_app = getattr(getattr(request, "resolver_match", None), "namespace", None)
    return current_app


class URLNode(DjangoURLNode):
    def render(self, context):
        if self.args or self.kwargs or self.asvar:
            return super().render(context)
        view_name = self.view_name.resolve(context)
        if not isinstance(view_name, str):
            return super().render(context)
        urlconf = get_urlconf()
        key = (str(view_name), _current_app(context), urlconf, get_resolver(urlconf), get_script_prefix(),
               bool(context.autoescape))
        url = _urls.get(key)
        if url is None:
            url = super().render(context)  # raises NoReverseMatch as Django's does; nothing kept
            _urls.put(key, url)
        return url


@register.tag("url")
def do_url(parser, token):
    """Django's `{% url %}` (its parsing and checks), making this module's `URLNode`."""
    node = django_url(parser, token)
    return URLNode(node.view_name, node.args, node.kwargs, node.asvar)


# ---- {% csrf_token %} ------------------------------------------------------------------------


class CsrfTokenNode(DjangoCsrfTokenNode):
    """Django's `{% csrf_token %}`, but autobot/csrf.py's token (every page's) written straight:
    Django's tests its truth and `== "NOTPROVIDED"`, then `format_html` escapes it; a made token is
    64 letters and digits, already safe (`LazyToken.__html__`), so the field is the same text.
    Any other value (none, "NOTPROVIDED", a view's own) is Django's."""

    def render(self, context):
        token = context.get("csrf_token")
        if type(token) is LazyToken:
            html = token.__html__()
            if isinstance(html, SafeString) and html and html != "NOTPROVIDED":
                return SafeString(f'<input type="hidden" name="csrfmiddlewaretoken" value="{html}">')
        return super().render(context)


@register.tag("csrf_token")
def do_csrf_token(parser, token):
    return CsrfTokenNode()
