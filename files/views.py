from django.shortcuts import render

from autobot.pages import page


@page  # signed-in only; session, user and rendering in one lane job (autobot/pages.py)
def index(request):
    """The file manager page; everything on it talks to /api/files/."""
    return render(request, "files/index.html", {"area": request.GET.get("user", "")})
