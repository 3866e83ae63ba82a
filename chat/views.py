from django.conf import settings
from django.shortcuts import render

from autobot.pages import page


@page  # signed-in only; session, user and rendering in one lane job (autobot/pages.py)
def index(request):
    return render(request, "chat/index.html", {"max_chars": settings.CHAT_MAX_MESSAGE_CHARS})
