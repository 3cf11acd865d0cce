"""The examples of the guide "Security model", run by the tests.

Run it: ``uv run python docs/snippets/security.py`` (Google is emulated).
"""

import json

from _google import EmulatedGoogle

google = EmulatedGoogle()

# --8<-- [start:reprs]
import goth_actors

credentials = goth_actors.load_credentials("credentials.json")
source = goth_actors.ServiceAccount(credentials)
token = goth_actors.Token.fetch(source)
print(source)  # ServiceAccount(client_email=..., scopes=..., url=...): no key
print(token)  # Token(token=<52 chars hidden>, type='Bearer', ...)
# --8<-- [end:reprs]

# --8<-- [start:config_error]
damaged = dict(credentials, private_key="-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END")
try:
    goth_actors.ServiceAccount(damaged)
except goth_actors.ConfigError as error:
    print(error.field, "|", error)  # names the field, never echoes the key
# --8<-- [end:config_error]

# --8<-- [start:endpoint_policy]
hostile = dict(credentials, token_uri="https://tokens.example.com/token")
try:
    goth_actors.source_from_credentials(hostile)
except goth_actors.ConfigError as error:
    print(error.field)  # credentials.token_uri: not one of Google's token services

# A private endpoint you trust (Private Service Connect, a proxy): say so in code.
trusted = goth_actors.source_from_credentials(hostile, allow_custom_endpoints=True)
print(type(trusted).__name__)
# --8<-- [end:endpoint_policy]

# --8<-- [start:redaction]
google.emulator.fail_next(  # an endpoint that echoes a credential back in its error
    1,
    400,
    body=json.dumps({"error": "invalid_grant", "error_description": f"bad: {token.token}"}),
)
try:
    goth_actors.Token.fetch(source)
except goth_actors.TokenEndpointError as error:
    print(error.status, error.error, error.retryable)  # 400 invalid_grant False
    print(token.token in str(error), token.token in error.body)  # False False
# --8<-- [end:redaction]
google.close()
