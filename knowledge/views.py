from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def index(request):
    return render(request, "knowledge/index.html", {
        "max_upload_bytes": settings.KNOWLEDGE_MAX_UPLOAD_BYTES,
        "max_pages": settings.KNOWLEDGE_CRAWL_MAX_PAGES,
    })
