import pytest

pytestmark = pytest.mark.django_db


def test_the_chat_page_needs_a_login(client):
    response = client.get("/chat/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_chat_page_renders_for_a_user(client, owner, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 1234
    client.force_login(owner)
    response = client.get("/chat/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="model-picker"' in html and 'id="stop"' in html and 'maxlength="1234"' in html
    assert "chat/chat.js" in html
