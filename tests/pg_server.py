"""A throwaway PostgreSQL server for the store tests, and the `store_url` fixture over both backends.

The server is the real thing: `initdb` into a temporary folder, `pg_ctl start` on a free
127.0.0.1 port (socket in the same folder), trust auth, fsync off (the tests kill clients,
never the server). initdb refuses to run as root, so under root the server runs as the
`postgres` user (else `nobody`, else a system user created for it). Each test gets its own
schema. Without PostgreSQL binaries the postgres variant is skipped; CI installs them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.engine_process import free_port

_SEARCH = ["/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
_SERVICE_USERS = ("postgres", "nobody")
_CREATED_USER = "perpguard-pg"


def postgres_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then the usual Debian places."""
    on_path = shutil.which("initdb")
    for folder in ([str(Path(on_path).parent)] if on_path else []) + _SEARCH:
        initdb, pg_ctl = (Path(folder) / name for name in ("initdb", "pg_ctl"))
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb.resolve().parent  # through symlinks: the folder that also holds `postgres`
    return None


def _service_user() -> pwd.struct_passwd:
    for name in (*_SERVICE_USERS, _CREATED_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _CREATED_USER],
                   check=True)
    return pwd.getpwnam(_CREATED_USER)


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        root = os.geteuid() == 0
        # /tmp, not pytest's per-user (0700) tmp: the server's user must reach it, and the
        # socket path must stay short.
        self.dir = Path(tempfile.mkdtemp(prefix="perpguard-pg-", dir="/tmp" if root else None))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._as_user: dict = {}
        if root:
            user = _service_user()
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> None:
        env = {"PATH": f"{self.bin_dir}:/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}
        done = subprocess.run([str(self.bin_dir / args[0]), *args[1:]], cwd=self.dir, env=env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL, **self._as_user)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr}{done.stdout}\n{log}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale",
                  "--no-sync")
        options = f"-k {self.dir} -h 127.0.0.1 -p {self.port} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def new_schema_url(self) -> str:
        """A URL whose connections see only a new, empty schema (search_path): a clean database
        per test for a millisecond, where CREATE DATABASE costs a third of a second."""
        import psycopg

        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def postgres_server():
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl on PATH, in /usr/local/bin or "
                    "/usr/lib/postgresql/*/bin); .ci/run installs it")
    pytest.importorskip("psycopg", reason="psycopg (the PostgreSQL driver) is not installed")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    """A URL to an empty database: a SQLite file, or a new schema on the test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'perpguard.db'}"
    return request.getfixturevalue("postgres_server").new_schema_url()
