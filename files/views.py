from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def index(request):
    """The file manager page; everything on it talks to /api/files/."""
    return render(request, "files/index.html", {"area": request.GET.get("user", "")})
