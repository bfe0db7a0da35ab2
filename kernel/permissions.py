"""The API's one permission rule: logged-in users read; writes need the view's Django permission.

What a user may *see* is decided by portfolio scoping (documents.scoping), not here: a permission
says what a role may do, within the properties the user is granted.
"""

from __future__ import annotations

from typing import Protocol

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


class WritePermissionView(Protocol):
    #: "app_label.codename" needed by every method that is not a read.
    required_permission: str


class ReadOrRequiredPermission(BasePermission):
    """GET/HEAD/OPTIONS need a login; any other method also needs ``view.required_permission``."""

    def has_permission(self, request: Request, view: WritePermissionView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        self.message = f"You need the permission {view.required_permission}."
        return request.user.has_perm(view.required_permission)
