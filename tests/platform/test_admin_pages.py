import pytest
from django.contrib import admin

pytestmark = pytest.mark.django_db


def _changelists():
    return sorted(f"/admin/{m._meta.app_label}/{m._meta.model_name}/" for m in admin.site._registry)


@pytest.mark.parametrize("url", _changelists())
def test_every_admin_list_opens_for_staff(client, staff, url):
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200, url


def test_admin_is_closed_to_non_staff(client, owner):  # the list redirects to the admin login
    client.force_login(owner)
    response = client.get("/admin/autobot/auditevent/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_signed_in_non_staff_opening_the_admin_gets_a_clear_403(client, owner):
    client.force_login(owner)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert "for staff accounts" in response.content.decode()
    assert len(response.redirect_chain) <= 2


def test_anonymous_admin_visit_lands_on_the_login_page(client):
    response = client.get("/admin/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].startswith("/accounts/login/?next=")
