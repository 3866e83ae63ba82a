from django.urls import path

from files import views

app_name = "files"

urlpatterns = [
    path("", views.index, name="index"),
]
