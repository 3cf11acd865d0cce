"""The stage the guides' examples run on: Google, emulated, with the files a real machine has.

Each guide's examples are a program in this folder, shown on its page in sections
(``# --8<-- [start:NAME]`` ... ``[end:NAME]``) and run by ``tests/test_docs.py``. What a page
does not show is here: a [`GoogleEmulator`][goth_actors.testing.GoogleEmulator] on 127.0.0.1,
a service-account key written as ``credentials.json``, a user's as ``authorized_user.json``
and gcloud's impersonation file (the user acting as ``deployer@my-project``) as
``impersonated.json``, in a fresh working directory, ``GOOGLE_APPLICATION_CREDENTIALS``
naming the key and ``GCE_METADATA_HOST`` the emulator's metadata server. So the examples read
as they would on a real machine, and touch nothing of it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from goth_actors.testing import GoogleEmulator


class EmulatedGoogle:
    """A running emulator and a working directory holding the credentials files."""

    def __init__(self) -> None:
        self.emulator = GoogleEmulator().start()
        self._folder = tempfile.TemporaryDirectory(prefix="goth-actors-guide-")
        self._previous_cwd = os.getcwd()
        self._previous_env = dict(os.environ)
        os.chdir(self._folder.name)
        for name, content in (
            ("credentials.json", self.emulator.service_account("app@my-project.iam")),
            ("authorized_user.json", self.emulator.authorized_user()),
        ):
            path = Path(name)
            path.write_text(json.dumps(content), encoding="utf-8")
            path.chmod(0o600)
        user = json.loads(Path("authorized_user.json").read_text(encoding="utf-8"))
        deployer = "deployer@my-project.iam.gserviceaccount.com"
        impersonated = self.emulator.impersonated_service_account(user, deployer)
        Path("impersonated.json").write_text(json.dumps(impersonated), encoding="utf-8")
        self.api_url = self.emulator.api_url
        """A Google API's URL (the emulator's stands in for ``https://...googleapis.com/...``)."""
        os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(Path("credentials.json").resolve())
        os.environ["GCE_METADATA_HOST"] = self.emulator.metadata_host
        os.environ["GCE_METADATA_IP"] = self.emulator.metadata_host
        os.environ.pop("GOOGLE_CLOUD_PROJECT", None)

    def close(self) -> None:
        """Stops the emulator, and puts back the working directory and the environment."""
        os.chdir(self._previous_cwd)
        os.environ.clear()
        os.environ.update(self._previous_env)
        self.emulator.close()
        self._folder.cleanup()
