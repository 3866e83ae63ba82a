from django.contrib import admin

from interop.models import ExternalMcpServer


@admin.register(ExternalMcpServer)
class ExternalMcpServerAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "risk", "enabled", "updated")
    list_filter = ("enabled", "risk")
    search_fields = ("name", "url")
    filter_horizontal = ("users", "groups")
    fields = ("name", "url", "auth_header", "risk", "enabled", "users", "groups")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        # The header is a credential: typed in, never shown back.
        from django import forms

        form.base_fields["auth_header"].widget = forms.PasswordInput(render_value=False)
        form.base_fields["auth_header"].help_text += " Leave empty to keep the stored one."
        return form

    def save_model(self, request, obj, form, change):
        if change and not form.cleaned_data.get("auth_header"):
            obj.auth_header = ExternalMcpServer.objects.get(pk=obj.pk).auth_header
        super().save_model(request, obj, form, change)
