"""Errors the local service returns, shaped as AppStream returns them."""

from __future__ import annotations


class ApiError(Exception):
    """An AppStream error: `code` becomes `__type`, `status` the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def not_found(kind: str, name: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"The {kind} {name} does not exist.")
