from django.urls import path

from terminal import views

app_name = "terminal"

urlpatterns = [
    path("", views.index, name="index"),
    path("sessions/<str:session_id>/replay/", views.replay, name="replay"),
]
