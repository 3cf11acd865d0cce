"""Django: start the token server in ``AppConfig.ready()``; views call Google with ``GothAuth``.

``ready()`` runs once per process when Django starts (``runserver``, gunicorn, uwsgi,
``manage.py`` commands). Django has no shutdown hook, and needs none here: servers started by
``start_link`` are stopped at interpreter exit. ``ready()`` may run more than once in a process
(some test runners do that), so it tolerates a server that is already running::

    class TokenServers(AppConfig):
        name = "myproject.google"

        def ready(self):
            with contextlib.suppress(goth_actors.AlreadyStarted):
                goth_actors.start_link(name="userinfo", source=goth_actors.default_source())

Under gunicorn with ``preload_app``, ``ready()`` runs in the master before it forks its
workers: see ``examples/gunicorn_preload.py`` for what the workers then do.

Run it: ``uv run python examples/django_app.py``. A whole Django project in one file: it
configures Django, serves two requests through Django's test client, and exits; without
credentials against the built-in emulator and a local stand-in for Google's userinfo API, with
``GOOGLE_APPLICATION_CREDENTIALS`` against Google.
"""

from __future__ import annotations

import contextlib
import os

import django
import requests
from _credentials import SCOPES, emulator_unless_real, key_file, userinfo_api
from django.apps import AppConfig
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path

import goth_actors
from goth_actors.integrations.requests import GothAuth

SOURCE: goth_actors.Source | None = None  # set by main(): where the key comes from
USERINFO = ""


# --8<-- [start:app]
class TokenServers(AppConfig):
    """This file's Django app: starts the token server when Django is ready."""

    name = "__main__"
    label = "token_servers"
    path = os.path.dirname(os.path.abspath(__file__))

    def ready(self) -> None:
        assert SOURCE is not None
        with contextlib.suppress(goth_actors.AlreadyStarted):
            goth_actors.start_link(name="userinfo", source=SOURCE, prefetch="sync")


def whoami(_request: HttpRequest) -> JsonResponse:
    answer = requests.get(USERINFO, auth=GothAuth("userinfo"), timeout=10)
    return JsonResponse({"status": answer.status_code, "email": answer.json().get("email")})


urlpatterns = [path("whoami", whoami)]
# --8<-- [end:app]


def main() -> None:
    global SOURCE, USERINFO
    with emulator_unless_real() as emulator, userinfo_api(emulator) as (url, _refused):
        SOURCE = goth_actors.ServiceAccount(key_file(emulator, "service_account"), scopes=SCOPES)
        USERINFO = url
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=[f"{__name__}.TokenServers"],
            DATABASES={},
        )
        django.setup()  # Django is ready: TokenServers.ready() started the token server
        print(f"after django.setup(): {goth_actors.status('userinfo').state!r} token server")
        client = Client()
        for _ in range(2):
            answer = client.get("/whoami").json()
            print(f"GET /whoami -> {answer['status']} for {answer['email']}")
        if emulator is not None:
            print(f"token endpoint requests: {len(emulator.requests_to('token'))}")
        goth_actors.shutdown()  # what interpreter exit would do


if __name__ == "__main__":
    main()
