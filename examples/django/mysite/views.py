"""Imported lazily, with the URLconf, on the first request."""

import os

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render

RELEASE = "@release@"


def page(request):
    return render(request, "page.html",
                  {"code": settings.RELEASE, "views": RELEASE, "pid": os.getpid()})


def pid(request):
    return HttpResponse(str(os.getpid()), content_type="text/plain")
