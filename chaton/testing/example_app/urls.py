from django.urls import path

from chaton.testing.example_app import views

urlpatterns = [path("example/", views.page, name="example-page")]
