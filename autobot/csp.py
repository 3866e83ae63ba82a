"""Content-Security-Policy on every response that does not set its own.

The pages load scripts only from our own origin (one module per page, vendored libraries under
/static/vendor/), with no inline script and no inline event handlers, so ``script-src 'self'``
holds and an injected ``<script>`` or ``onerror=`` does nothing. Styles keep ``'unsafe-inline'``:
xterm.js writes its colours into a ``<style>`` element it creates at run time, and a style cannot
run code. ``frame-ancestors 'none'`` stops other sites framing the app (click-jacking). File
responses set a stricter policy of their own (files/ranges.py), which is kept.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from autobot.middleware import converts_exceptions, next_of, response_for

DIRECTIVES = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",  # fetch and WebSockets to this origin only (CSP3 'self' covers ws/wss)
    "frame-src 'none'",  # no page embeds a frame
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]
POLICY = "; ".join(DIRECTIVES)
# The replay page's player (asciinema-player) runs its terminal emulator as WebAssembly, which
# needs 'wasm-unsafe-eval': it allows compiling WebAssembly, not eval() of JavaScript. Only that
# page carries it (terminal/views.py), every other page keeps script-src 'self'.
WASM_POLICY = POLICY.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'")


class ContentSecurityPolicyMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response = next_of(get_response)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    @converts_exceptions  # as autobot/middleware.py's own: no Django converter level around it
    async def __call__(self, request):
        try:
            response = await self.get_response(request)
            if "Content-Security-Policy" not in response:
                response["Content-Security-Policy"] = POLICY
            return response
        except Exception as exc:
            return await response_for(request, exc)
