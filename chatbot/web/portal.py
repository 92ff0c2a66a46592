"""Putting the chat inside a company portal: /widget.js (a floating button that opens /embed in an iframe)
and the Content-Security-Policy that lets only the allowed portal origins frame the chat."""

from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import Response as PlainResponse

from chatbot.settings import PortalSettings

WIDGET_JS = """(() => {
  const script = document.currentScript;
  const server = new URL(script.src).origin + new URL(script.src).pathname.replace(/\\/widget\\.js$/, "");
  const data = script.dataset;
  const color = /^#[0-9a-fA-F]{6}$/.test(data.color || "") ? data.color : "__COLOR__";
  const params = new URLSearchParams();
  for (const key of ["kb", "title", "token"]) if (data[key]) params.set(key, data[key]);
  params.set("color", color);
  const button = document.createElement("button");
  button.id = "ragdesk-button";
  button.type = "button";
  button.setAttribute("aria-label", data.title || "Chat with us");
  button.textContent = "?";
  button.style.cssText = "position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;" +
    "border:0;color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646;" +
    "background:" + color;
  let frame = null;
  button.addEventListener("click", () => {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.id = "ragdesk-frame";
      frame.title = data.title || "Chat";
      frame.src = server + "/embed/?" + params.toString();
      frame.style.cssText = "position:fixed;right:20px;bottom:88px;width:400px;max-width:calc(100vw - 40px);" +
        "height:620px;max-height:calc(100vh - 110px);border:1px solid #ddd;border-radius:12px;background:#fff;" +
        "box-shadow:0 8px 30px rgba(0,0,0,.2);z-index:2147483647";
      document.body.appendChild(frame);
    } else {
      frame.style.display = frame.style.display === "none" ? "block" : "none";
    }
  });
  document.body.appendChild(button);
})();
"""


def build_portal_router(portal: PortalSettings) -> APIRouter:
    router = APIRouter(tags=["portal"])
    script = WIDGET_JS.replace("__COLOR__", portal.theme_color)

    @router.get("/widget.js", include_in_schema=False)
    def widget() -> PlainResponse:
        return PlainResponse(script, media_type="text/javascript", headers={"Cache-Control": "max-age=300"})

    return router


def frame_policy(allowed_origins: Callable[[], list[str]]):  # type: ignore[no-untyped-def]
    """Middleware: /embed may be framed by the portal origins allowed at the time of the request (settings' and
    the admins', see PortalOriginStore); every other page by nobody else."""

    async def add_policy(request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
        root = request.scope.get("root_path", "")  # read before the mounted apps rewrite the scope
        embedded = request.url.path.removeprefix(root).startswith("/embed")
        response = await call_next(request)
        ancestors = " ".join(["'self'", *allowed_origins()]) if embedded else "'self'"
        response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return add_policy
