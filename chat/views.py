from django.conf import settings
from django.shortcuts import render

from autobot.pages import number_text, page


@page  # signed-in only; session, user and rendering in one lane job (autobot/pages.py)
def index(request):
    # The limit's text made once (`number_text`): the page writes it twice.
    return render(request, "chat/index.html", {"max_chars": number_text(settings.CHAT_MAX_MESSAGE_CHARS)})
