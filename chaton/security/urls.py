from django.urls import path

from chaton.security import views

urlpatterns = [
    path("account/two-factor/", views.two_factor, name="two-factor"),
    path("login/verify/", views.verify, name="two-factor-verify"),
]
