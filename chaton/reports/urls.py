from django.urls import path, register_converter

from chaton.reports import views


class FormatConverter:
    regex = "html|pdf|md"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(FormatConverter, "report_format")

urlpatterns = [
    path("reports/", views.public_list, name="report-public-list"),
    path("reports/<slug:name>.<report_format:format_name>", views.public_file,
         name="report-public-file"),
    path("reports/admin/", views.admin_list, name="report-admin-list"),
    path("reports/admin/<slug:name>/", views.admin_detail, name="report-admin-detail"),
    path("reports/admin/<slug:name>/build/", views.admin_build, name="report-admin-build"),
    path("reports/admin/<slug:name>/publish/", views.admin_publish,
         name="report-admin-publish"),
    path("reports/admin/<slug:name>/preview/", views.admin_preview,
         name="report-admin-preview"),
    path("reports/admin/<slug:name>/<report_format:format_name>/", views.admin_download,
         name="report-admin-download"),
]
