"""S3 error codes, and how the server's other failures map onto them.

Every refusal of the S3 face is an ``S3Error``; anything else a request raises (a backend
read error, a range the object cannot satisfy, a client gone) goes through the server's
one mapping, ``errors.failure_for``, and gets the S3 code matching its status here.
"""

from __future__ import annotations

from http import HTTPStatus

from ..errors import Failure


class S3Error(Exception):
    """Ends a request with S3's XML error ``code`` and HTTP ``status``; ``extra`` adds
    elements to the <Error> body (e.g. the StringToSign of SignatureDoesNotMatch)."""

    def __init__(self, status: int, code: str, message: str,
                 extra: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


def access_denied(message: str = "Access Denied") -> S3Error:
    return S3Error(HTTPStatus.FORBIDDEN, "AccessDenied", message)


def invalid_argument(message: str, name: str | None = None,
                     value: str | None = None) -> S3Error:
    extra = {}
    if name is not None:
        extra["ArgumentName"] = name
        extra["ArgumentValue"] = value or ""
    return S3Error(HTTPStatus.BAD_REQUEST, "InvalidArgument", message, extra)


def not_implemented(message: str) -> S3Error:
    return S3Error(HTTPStatus.NOT_IMPLEMENTED, "NotImplemented", message)


_CODE_FOR_STATUS = {
    HTTPStatus.BAD_REQUEST: "InvalidRequest",
    HTTPStatus.FORBIDDEN: "AccessDenied",
    HTTPStatus.NOT_FOUND: "NoSuchKey",
    HTTPStatus.METHOD_NOT_ALLOWED: "MethodNotAllowed",
    HTTPStatus.REQUEST_URI_TOO_LONG: "InvalidURI",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "RequestHeaderSectionTooLarge",
    HTTPStatus.REQUEST_TIMEOUT: "RequestTimeout",
    HTTPStatus.LENGTH_REQUIRED: "MissingContentLength",
    HTTPStatus.PRECONDITION_FAILED: "PreconditionFailed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "EntityTooLarge",
    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE: "InvalidRange",
    HTTPStatus.NOT_IMPLEMENTED: "NotImplemented",
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: "NotImplemented",
    HTTPStatus.SERVICE_UNAVAILABLE: "ServiceUnavailable",
}


def code_for(failure: Failure) -> str:
    """The S3 error code of a generic failure (other 5xx are InternalError)."""
    status = HTTPStatus(failure.status)
    if status in _CODE_FOR_STATUS:
        return _CODE_FOR_STATUS[status]
    return "InternalError" if status >= 500 else "InvalidRequest"
