"""Django's template backend, but a rendering leaves no reference cycle behind.

A `RequestContext` keeps its layers (`ContextDict`s), and each layer keeps the context it is in
(only to pop itself when used as a `with` block): a cycle, with the request and everything the
page was given inside it. Nothing but the cyclic garbage collector frees it, so every page left
its request for a collection to find; under load those collections took a share of the worker's
CPU and, when a full one came due, held the event loop (docs/performance.md, "Eighth round").
Once the rendering is done the layers' back links are dropped, and the context is freed with
the request. What the template sees and returns is Django's. `Template.render` restates Django
5.2's: tests/platform/test_no_cycles.py fails when Django's changes.
"""

from django.template import TemplateDoesNotExist
from django.template.backends import django as django_backend
from django.template.backends.django import reraise
from django.template.context import ContextDict, make_context


class DjangoTemplates(django_backend.DjangoTemplates):
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
