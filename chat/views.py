from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def index(request):
    return render(request, "chat/index.html", {"max_chars": settings.CHAT_MAX_MESSAGE_CHARS})
