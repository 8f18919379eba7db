"""Pages of the whole site: home, login, logout, audit log."""

from django.contrib.auth import views as auth_views
from django.urls import path

from chaton.core import views
from chaton.core.forms import ThrottledAuthenticationForm

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(template_name="core/login.html",
                                                authentication_form=ThrottledAuthenticationForm,
                                                redirect_authenticated_user=True), name="login"),
    # Django 5 only logs out on POST: a link cannot log someone out behind their back.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.audit_log, name="audit-log"),
    path("me/tokens/", views.my_tokens, name="my-tokens"),
    path("me/tokens/<int:token_id>/revoke/", views.my_token_revoke, name="my-token-revoke"),
]
