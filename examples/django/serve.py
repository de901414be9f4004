"""One command: ``python examples/django/serve.py`` builds a two-release site in a
temporary directory (``collectstatic`` in each) and runs it under gunicorn on
127.0.0.1:8000."""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _site import collectstatic, serve  # noqa: E402

serve(HERE, collectstatic, [sys.executable, "-m", "gunicorn", "--workers", "2",
                            "--chdir", "{app}", "--bind", "127.0.0.1:8000",
                            "mysite.wsgi:application"])
