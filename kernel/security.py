"""A Content-Security-Policy on every response, as defence in depth against stored XSS.

Statement text (account codes and names, property names, file names) comes from clients' systems
and is escaped wherever it is printed; should one place miss it, the policy still keeps injected
markup from running script: scripts load only from our own origin (the console's are static
files), never inline, never from ``javascript:`` URLs or event-handler attributes.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and HEADER not in response:
            response[HEADER] = self.policy
        return response
