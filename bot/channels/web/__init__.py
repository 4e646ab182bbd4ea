"""The web chat widget: one script a site embeds, its stylesheet, and a demo page.

The files are plain static assets (no build step), read once from the package when
the router is made. The widget talks to /v1/ask, /v1/faq/{id} and /v1/feedback; a site
on another origin also needs FAQBOT_CORS_ORIGINS.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.config import Settings

_STATIC = resources.files(__name__) / "static"
# Short caching: a widget update reaches embedding sites within minutes.
_ASSET_HEADERS = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}


def router(settings: Settings) -> APIRouter:
    """The widget's routes. It needs no secrets, so unlike LINE and Slack it is always on
    (`settings` is taken for the channels' common signature)."""
    del settings
    script = (_STATIC / "widget.js").read_bytes()
    stylesheet = (_STATIC / "widget.css").read_bytes()
    demo = (_STATIC / "demo.html").read_text(encoding="utf-8")
    web = APIRouter(tags=["web widget"])

    @web.get("/widget/widget.js", response_class=Response)
    async def widget_js() -> Response:
        """The embeddable chat widget (one script tag; options as data- attributes)."""
        return Response(script, media_type="text/javascript; charset=utf-8", headers=_ASSET_HEADERS)

    @web.get("/widget/widget.css", response_class=Response)
    async def widget_css() -> Response:
        """The widget's stylesheet, loaded by the script itself."""
        return Response(stylesheet, media_type="text/css; charset=utf-8", headers=_ASSET_HEADERS)

    @web.get("/widget/demo", response_class=HTMLResponse)
    async def widget_demo() -> HTMLResponse:
        """A page that embeds the widget, to try it and to show how to embed it."""
        return HTMLResponse(demo)

    @web.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        # Relative, so it still works when the service sits under a path prefix.
        return RedirectResponse("widget/demo")

    return web
