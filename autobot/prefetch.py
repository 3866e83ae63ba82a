"""A list call's page read in the same lane job as its token or session check: one thread hop, not two.

A `GET` list call with a Bearer token went to a lane twice: ninja runs authentication before the
view, so the token check was one job and the page query another. A lane trip — handing the job
to a lane thread and being woken when it is done — costs 40-80 µs of CPU on this machine (two
cross-thread wake-ups), more than the token query itself (docs/performance.md, target 1, fifth
round).

An operation that declares its read (`Prefetch`, passed to `autobot.auth.token_reading`) has
`BearerAuth` run that read right after a successful token check, in the same job, for the user
the check found (and `SessionAuth` likewise, after reading a browser session's user), with the
operation's parameters guessed from the query string (`params`, a pydantic model of them). The
view then asks `Prefetch.page` for its page with the values ninja validated; it gets the
prefetched page only if that was read for the same user and equal values, and otherwise (a guess
that differs) reads it itself. So a view's answer never depends on the guess: a wrong one costs
a trip, nothing more. Authentication comes first as before (a bad token or session reads nothing
and is a 401, before any 422), and ninja still validates every parameter.

A read may also be declared for another method and guessed from the path's parameters
(`methods`, `path=True`): chat's message `POST` reads its session with the token check
(chat/api.py, docs/performance.md, eleventh round). A read is only ever a read: a refusal that
comes after it (a read-only token, a failed CSRF check) discards it.
"""

from collections.abc import Callable
from typing import Any

import pydantic
from django.http import HttpRequest, QueryDict

from autobot import lanes

_ATTRIBUTE = "_autobot_prefetched"
_REMEMBERED_QUERIES = 256  # guesses kept per operation (then forgotten all at once)
_REMEMBERED_QUERY_CHARS = 200  # longer query strings are parsed every time


class Prefetch:
    """`read(user, **values)`: a sync function (it runs on a lane) returning what the view needs;
    `params`: a pydantic model of the view's query parameters with the view's defaults, or with
    `path`, of its path parameters. `methods`: the requests it is read for."""

    def __init__(self, read: Callable[..., Any], params: type[pydantic.BaseModel], *,
                 methods: tuple[str, ...] = ("GET",), path: bool = False) -> None:
        self.read, self.params = read, params
        self.methods, self.path = methods, path
        self._guesses: dict[str, dict | None] = {}  # query string → guess

    def guess(self, request: HttpRequest) -> dict | None:
        """The values the view will most likely be given, from the query string (the last value of
        each name, as ninja takes it), or with `path` from the URL's parameters (as Django's
        resolver matched them: text); None when they do not parse (ninja answers 422 then).

        Remembered per query string (validating it cost 9-20 µs a call; clients repeat theirs),
        a bounded number of short ones; a copy each time, so no caller changes the remembered one."""
        if self.path:
            match = getattr(request, "resolver_match", None)
            return None if match is None else self._parse_values(match.kwargs)
        query = request.META.get("QUERY_STRING", "")
        if len(query) > _REMEMBERED_QUERY_CHARS:
            return self._parse(request.GET)
        if query not in self._guesses:
            if len(self._guesses) >= _REMEMBERED_QUERIES:
                self._guesses.clear()
            self._guesses[query] = self._parse(request.GET)
        values = self._guesses[query]
        return None if values is None else dict(values)

    def _parse(self, query: QueryDict) -> dict | None:
        return self._parse_values(query.dict())

    def _parse_values(self, values: dict) -> dict | None:
        try:
            return self.params.model_validate(values).model_dump()
        except pydantic.ValidationError:
            return None

    def run_with(self, user, values: dict | None):
        """The read for `user` (sync, in the token check's job); None without values."""
        return None if values is None else self.read(user, **values)

    def keep(self, request: HttpRequest, user, values: dict | None, result) -> None:
        """Note on the request what `run_with` read, for `page`."""
        if values is not None:
            setattr(request, _ATTRIBUTE, (self, user, values, result))

    async def page(self, request: HttpRequest, user, **values):
        """The read's result for `user` and these (validated) values: the prefetched one if it was
        read for the same user and equal values, else read now on a lane."""
        kept = getattr(request, _ATTRIBUTE, None)
        if kept is not None:
            delattr(request, _ATTRIBUTE)  # used once
            prefetch, for_user, for_values, result = kept
            if prefetch is self and for_user is user and for_values == values:
                return result
        return await lanes.run(self.read, user, **values)
