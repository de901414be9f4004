"""One command: ``python examples/starlette/serve.py`` builds a two-release site in
a temporary directory and runs it under ``uvicorn --workers 2`` on 127.0.0.1:8000."""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _site import hash_static, serve  # noqa: E402

serve(HERE, hash_static, [sys.executable, "-m", "uvicorn", "--workers", "2",
                          "--app-dir", "{app}", "--host", "127.0.0.1", "--port", "8000",
                          "app:app"])
