"""goth_actors: Google OAuth2 tokens kept fresh by supervised Pykka actors."""

from goth_actors._errors import (
    AlreadyRegistered,
    AlreadyStarted,
    ConfigError,
    FailedToStartChild,
    FetchTimeout,
    GothError,
    MaxRestartsExceeded,
    ServerNotFound,
    TokenEndpointError,
    TokenError,
    TransportError,
)
from goth_actors._http import HttpClient, HttpResponse

__all__ = [
    "AlreadyRegistered",
    "AlreadyStarted",
    "ConfigError",
    "FailedToStartChild",
    "FetchTimeout",
    "GothError",
    "HttpClient",
    "HttpResponse",
    "MaxRestartsExceeded",
    "ServerNotFound",
    "TokenEndpointError",
    "TokenError",
    "TransportError",
]
