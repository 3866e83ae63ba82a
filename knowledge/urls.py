from django.urls import path

from knowledge import views

urlpatterns = [
    path("", views.index, name="knowledge-index"),
    path("entries/<int:entry_id>/html", views.entry_html, name="knowledge-entry-html"),
]
