"""A Starlette (or FastAPI) app served from one release per worker by realdoc
(see docs/frameworks.md).

Run it with ``python examples/starlette/serve.py``.  ``EXAMPLE_WITHOUT_REALDOC=1``
runs the same app without realdoc, to see pages mix releases after a flip.
"""

import os

import realdoc

HERE = os.path.dirname(os.path.abspath(__file__))
WITH_REALDOC = os.environ.get("EXAMPLE_WITHOUT_REALDOC") != "1"
if WITH_REALDOC:  # first, before Starlette: this worker's code comes from one release
    HERE = realdoc.pin_process(HERE)

from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402
from starlette.templating import Jinja2Templates  # noqa: E402

from realdoc.asgi import RealdocMiddleware  # noqa: E402
from realdoc.contrib import Manifest  # noqa: E402

if WITH_REALDOC:
    from realdoc.contrib.starlette import StaticFiles  # hashed assets of older releases: 200
else:
    from starlette.staticfiles import StaticFiles

RELEASE = "@release@"  # serve.py stamps each release's name here
STATIC = os.path.join(HERE, "static")
templates = Jinja2Templates(directory=os.path.join(HERE, "templates"))
templates.env.globals["asset"] = Manifest(STATIC)


async def page(request):
    import views  # imported lazily, on the first request, as big apps do

    return templates.TemplateResponse(request, "page.html", {
        "code": RELEASE, "views": views.RELEASE, "pid": os.getpid()})


async def pid(request):
    return PlainTextResponse(str(os.getpid()))


app = Starlette(routes=[Route("/", page), Route("/pid", pid),
                        Mount("/static", StaticFiles(directory=STATIC), name="static")])
if WITH_REALDOC:
    app = RealdocMiddleware(app, STATIC, header="X-Release")
