"""WSGI entry: the process pin first, then Django (see docs/frameworks.md).

``EXAMPLE_WITHOUT_REALDOC=1`` runs the same project without realdoc, to see
pages mix releases after a flip.
"""

import os

import realdoc

WITH_REALDOC = os.environ.get("EXAMPLE_WITHOUT_REALDOC") != "1"
if WITH_REALDOC:  # first, before Django: this worker's code comes from one release
    realdoc.pin_process(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from realdoc.wsgi import RealdocMiddleware  # noqa: E402

application = get_wsgi_application()
if WITH_REALDOC:
    application = RealdocMiddleware(application, str(settings.STATIC_ROOT), header="X-Release")
