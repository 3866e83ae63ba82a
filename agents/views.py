import re

from django.shortcuts import render

from agents.builtin import SPECS
from autobot.pages import page

# A spec's data shape reads '{"q": str, "limit": int, "use_knowledge": bool}'.
_FIELD = re.compile(r'"(\w+)"\s*:\s*(str|int|float|bool)')
_INPUT = {"str": "text", "int": "number", "float": "number", "bool": "checkbox"}


def builtin_actions() -> list[dict]:
    """One form per action of each built-in agent, from the registry's own specs: the page
    offers exactly what the agents accept. The first field of each action is the required one."""
    forms = []
    for spec in SPECS.values():
        for action, shape in spec.actions.items():
            fields = [{"name": name, "kind": kind, "input": _INPUT[kind], "required": i == 0,
                       "step": "any" if kind == "float" else "1"}
                      for i, (name, kind) in enumerate(_FIELD.findall(shape))]
            forms.append({"agent": spec.agent_id, "agent_name": spec.name, "description": spec.description,
                          "action": action, "fields": fields})
    return forms


@page  # signed-in only; session, user and rendering in one lane job (autobot/pages.py)
def index(request):
    """The agents page: live registry, live message feed, a form per built-in action, and a raw
    send form (all via the API/WebSocket)."""
    return render(request, "agents/index.html", {"builtin_actions": builtin_actions()})
