"""The /knowledge/ page and the admin."""

import pytest
from asgiref.sync import async_to_sync

from knowledge import services
from knowledge.models import CrawlJob, KnowledgeEntry

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_page_needs_a_login(client):
    response = client.get("/knowledge/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_renders_for_a_user(client, owner):
    client.force_login(owner)
    response = client.get("/knowledge/")
    assert response.status_code == 200
    assert b'id="kb-q"' in response.content and b"knowledge/knowledge.js" in response.content


def test_the_page_says_the_upload_limit_as_django_s_filesizeformat_does(client, owner, settings):
    from django.template.defaultfilters import filesizeformat

    client.force_login(owner)
    for limit in (20 * 1024 * 1024, 1536, 1536):  # the second 1536: the kept text
        settings.KNOWLEDGE_MAX_UPLOAD_BYTES = limit
        html = client.get("/knowledge/").content.decode()
        assert f"Up to {filesizeformat(limit)} each." in html
        assert f'data-max-upload="{limit}"' in html


def test_the_admin_lists_entries_and_crawls_and_deletes_through_the_service(client, staff, owner):
    entry = async_to_sync(services.entry_create)(user=owner, title="Admin view", content="Some text.")
    CrawlJob.objects.create(owner=owner, url="https://example.test/", status="done")
    client.force_login(staff)
    assert client.get("/admin/knowledge/knowledgeentry/").status_code == 200
    assert client.get(f"/admin/knowledge/knowledgeentry/{entry.pk}/change/").status_code == 200
    assert client.get("/admin/knowledge/crawljob/").status_code == 200
    response = client.post(f"/admin/knowledge/knowledgeentry/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not KnowledgeEntry.objects.exists()
    from autobot.models import AuditEvent

    assert AuditEvent.objects.filter(action="knowledge.entry_deleted", actor_id=staff.pk).exists()


def test_an_entry_renders_as_sanitised_markdown_for_its_reader_only(client, owner, stranger):
    entry = async_to_sync(services.entry_create)(
        user=owner, title="Runbook", content="# Restart\n\n**Carefully**.\n\n<script>alert(1)</script>")
    client.force_login(owner)
    response = client.get(f"/knowledge/entries/{entry.pk}/html")
    html = response.content.decode()
    assert response.status_code == 200 and "<h1>Restart</h1>" in html and "<strong>Carefully</strong>" in html
    assert "<script" not in html
    client.force_login(stranger)
    assert client.get(f"/knowledge/entries/{entry.pk}/html").status_code == 404


def test_the_admins_crawl_cancel_needs_the_change_permission(client, owner, django_user_model):
    from django.contrib.auth.models import Permission

    job = CrawlJob.objects.create(owner=owner, url="https://example.test/", status=CrawlJob.Status.RUNNING)
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="knowledge", codename="view_crawljob"))
    client.force_login(viewer)
    client.post("/admin/knowledge/crawljob/", {"action": "cancel", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == CrawlJob.Status.RUNNING
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="knowledge", codename="change_crawljob"))
    client.force_login(django_user_model.objects.get(pk=viewer.pk))
    client.post("/admin/knowledge/crawljob/", {"action": "cancel", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status != CrawlJob.Status.RUNNING


@pytest.mark.parametrize("grouped", [False, True])
def test_the_page_writes_its_numbers_as_the_template_wrote_the_settings(client, owner, settings, grouped):
    """`number_text` (autobot/pages.py): the text `{{ n }}` of the int gives, thousands separated
    or not, read afresh after a setting changes."""
    from django.template import Context, Template

    settings.USE_THOUSAND_SEPARATOR = grouped
    client.force_login(owner)
    for limit, pages in ((20 * 1024 * 1024, 1500), (1536, 50), (1536, 50)):  # the last: kept texts
        settings.KNOWLEDGE_MAX_UPLOAD_BYTES, settings.KNOWLEDGE_CRAWL_MAX_PAGES = limit, pages
        html = client.get("/knowledge/").content.decode()
        written = Template("{{ limit }}|{{ pages }}").render(Context({"limit": limit, "pages": pages})).split("|")
        assert (f'data-max-upload="{written[0]}"' in html and f'data-max-pages="{written[1]}"' in html
                and f'max="{written[1]}"' in html)
    assert ("," in written[0]) is grouped
