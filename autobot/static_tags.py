"""`{% static %}` for every template (a template builtin, settings TEMPLATES), rendering a name's
URL once.

Every page renders five or so `{% static %}` tags, and Django's asked, on every rendering, whether
the staticfiles app is installed (a walk over the installed apps), went through the lazy
`staticfiles_storage` (which raises and catches an AttributeError to reach the storage) and
escaped the URL: ~48,000 instructions a tag, ~6 % of a page (docs/performance.md, "Twelfth round
(target 2)"). The storage AutoBot configures (autobot/storage.py) gives a name the same URL for
as long as the process runs, so the tag's output for a name is kept after its first rendering,
and only then: with any other storage (one whose URLs may change, as signed URLs expire), or
without the staticfiles app, every rendering is Django's. A setting changed (tests'
`override_settings`: STATIC_URL, STORAGES, INSTALLED_APPS...) forgets what was kept, as Django
resets its storage then. `{% static ... as name %}` is Django's.

A builtin rather than a library registered as "static" (Django's system check warns of two
libraries by one name): AutoBot's templates use `{% static %}` without `{% load static %}`, which
would put Django's tag back for that template (tests/platform/test_templating.py checks that none
does, and that the output is Django's).
"""

from django.apps import apps
from django.conf import STATICFILES_STORAGE_ALIAS
from django.core.files.storage import storages
from django.template import Library
from django.templatetags import static as django_static

from autobot.memo import Memo
from autobot.storage import StaticFilesStorage

register = Library()

_rendered = Memo(2048, settings=True)


def _urls_are_stable() -> bool:
    return (apps.is_installed("django.contrib.staticfiles")
            and isinstance(storages[STATICFILES_STORAGE_ALIAS], StaticFilesStorage))


class StaticNode(django_static.StaticNode):
    def render(self, context):
        if self.varname is not None:
            return super().render(context)
        path = self.path.resolve(context)
        if not isinstance(path, str):  # a variable holding something else: Django's, every time
            return super().render(context)
        key = (str(path), bool(context.autoescape))
        url = _rendered.get(key)
        if url is None:
            url = super().render(context)
            if _urls_are_stable():
                _rendered.put(key, url)
        return url


@register.tag("static")
def do_static(parser, token):
    """Django's `{% static %}` (its parsing and checks), making this module's `StaticNode`."""
    return StaticNode.handle_token(parser, token)
