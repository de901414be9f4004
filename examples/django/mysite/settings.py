"""Settings of the realdoc Django example: DEBUG off (so templates use the cached
loader), STATIC_ROOT served by WhiteNoise with ManifestStaticFilesStorage."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
RELEASE = "@release@"  # serve.py stamps each release's name here

SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = [
    # realdoc's WhiteNoise: hashed assets of older releases still answer 200
    "whitenoise.middleware.WhiteNoiseMiddleware"
    if os.environ.get("EXAMPLE_WITHOUT_REALDOC") == "1"
    else "realdoc.contrib.django.WhiteNoiseMiddleware",
]
ROOT_URLCONF = "mysite.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates",
              "DIRS": [BASE_DIR / "templates"]}]
DATABASES = {}
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "assets"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
USE_TZ = True
