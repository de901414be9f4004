"""A Flask app served from one release per worker by realdoc (see docs/frameworks.md).

Run it with ``python examples/flask/serve.py``.  ``EXAMPLE_WITHOUT_REALDOC=1``
runs the same app without realdoc, to see pages mix releases after a flip.
"""

import os

import realdoc

WITH_REALDOC = os.environ.get("EXAMPLE_WITHOUT_REALDOC") != "1"
if WITH_REALDOC:  # first, before Flask: this worker's code comes from one release
    realdoc.pin_process(os.path.dirname(os.path.abspath(__file__)))

from flask import Flask, render_template  # noqa: E402

import realdoc.contrib.flask  # noqa: E402
from realdoc.contrib import Manifest  # noqa: E402
from realdoc.wsgi import RealdocMiddleware  # noqa: E402

RELEASE = "@release@"  # serve.py stamps each release's name here

app = Flask(__name__)
if WITH_REALDOC:
    realdoc.contrib.flask.release_assets(app)  # hashed assets of older releases: 200
    app.wsgi_app = RealdocMiddleware(app.wsgi_app, app.static_folder, header="X-Release")
else:
    app.jinja_env.globals["asset"] = Manifest(app.static_folder)


@app.route("/")
def page():
    import views  # imported lazily, on the first request, as big apps do

    return render_template("page.html", code=RELEASE, views=views.RELEASE, pid=os.getpid())


@app.route("/pid")
def pid():
    return str(os.getpid())
