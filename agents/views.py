from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def index(request):
    """The agents page: live registry, live message feed, and a send form (all via the API/WebSocket)."""
    return render(request, "agents/index.html")
