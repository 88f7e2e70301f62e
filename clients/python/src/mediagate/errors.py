"""The exceptions of the admin client.

One class for every refusal, so that ``except mediagate.Error`` is all an application needs;
``.code`` is the API's stable error code, which is what code should branch on (``.message`` is
for people and may change).
"""

from __future__ import annotations

from typing import Any, Optional

import httpx

__all__ = ["Error", "UnavailableError"]


class Error(Exception):
    """A refused or failed admin call.

    ``status`` is the HTTP status (``None`` when no answer came), ``code`` the API's error code
    (``"unauthorized"``, ``"file_not_found"``, ``"invalid_input"``, …), ``message`` its
    explanation.
    """

    def __init__(self, status: Optional[int], code: str, message: str) -> None:
        super().__init__(f"{status if status is not None else 'no answer'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def __reduce__(self) -> Any:
        # Picklable (to cross a process boundary: multiprocessing, task queues).
        return (Error, (self.status, self.code, self.message))

    @classmethod
    def from_response(cls, response: httpx.Response) -> Error:
        """The error an answer carries, or a generic one for an answer that is not the API's
        JSON (a proxy's HTML error page, say)."""
        try:
            body: Any = response.json()
            error = body["error"]
            code, message = error["code"], error["message"]
            if isinstance(code, str) and isinstance(message, str):
                return cls(response.status_code, code, message)
        except (ValueError, KeyError, TypeError):
            pass
        text = response.text[:200] if response.is_stream_consumed else ""
        return cls(
            response.status_code,
            "unexpected_response",
            f"HTTP {response.status_code} without an error body from mediagate {text!r}",
        )


class UnavailableError(Error):
    """No answer from the admin listener: refused connection, timeout, broken transfer.

    ``status`` is ``None`` and ``code`` is ``"unavailable"``. Retrying later may help; an
    upload that failed this way left nothing behind on the server (it registers a file only
    once the whole body arrived).
    """

    def __init__(self, message: str) -> None:
        super().__init__(None, "unavailable", message)

    def __reduce__(self) -> Any:
        return (UnavailableError, (self.message,))
