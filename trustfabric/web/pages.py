"""The browser pages: the anomaly explorer and GraphiQL. Their assets are files of this
package under static/, so both work on a machine without internet."""

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

# The pages load and send nothing beyond this origin: no external fonts, scripts or
# trackers, and a script injected by some bug could not carry a token elsewhere.
_CSP = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
EXPLORER_HEADERS = {
    "content-security-policy": _CSP,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
# GraphiQL's bundle inserts <style> elements as it renders, and embeds its fonts
GRAPHIQL_HEADERS = {**EXPLORER_HEADERS, "content-security-policy":
                    _CSP + "; style-src 'self' 'unsafe-inline'; font-src 'self' data:"}


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


async def home(request: Request) -> Response:
    return RedirectResponse("/explorer")


async def explorer(request: Request) -> Response:
    return FileResponse(STATIC / "explorer" / "index.html", headers=EXPLORER_HEADERS)


@cache
def _graphiql_html() -> str:
    return (STATIC / "graphiql" / "index.html").read_text()


def graphiql() -> Response:
    """GraphiQL at GET /graphql, in place of Strawberry's page, which loads from a CDN."""
    return HTMLResponse(_graphiql_html(), headers=GRAPHIQL_HEADERS)
