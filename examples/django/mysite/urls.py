"""Imported by Django on the first request (and with it, views)."""

from django.urls import path

from . import views

urlpatterns = [path("", views.page), path("pid", views.pid)]
