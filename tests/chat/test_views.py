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


@pytest.mark.parametrize("grouped", [False, True])
def test_the_chat_page_writes_its_limit_as_the_template_wrote_the_setting(client, owner, settings, grouped):
    from django.template import Context, Template

    settings.USE_THOUSAND_SEPARATOR = grouped
    client.force_login(owner)
    for limit in (32000, 1234, 1234):  # the second 1234: the kept text
        settings.CHAT_MAX_MESSAGE_CHARS = limit
        html = client.get("/chat/").content.decode()
        written = Template("{{ limit }}").render(Context({"limit": limit}))
        assert f'data-max-chars="{written}"' in html and f'maxlength="{written}"' in html
    assert ("," in Template("{{ n }}").render(Context({"n": 32000}))) is grouped


def test_a_number_s_text_is_kept_by_type_and_value():
    from autobot.pages import number_text

    assert (number_text(1), number_text(True), number_text(1.0)) == ("1", "True", "1.0")
