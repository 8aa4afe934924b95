"""Real PostgreSQL and Milvus servers in a temporary directory, for tests and benchmarks (never product code).

PostgreSQL: Debian's binaries (`initdb`, `pg_ctl`) on a free localhost port, trust authentication, data and socket
in a fresh temp dir. PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
Milvus: the pip package `milvus` (Milvus standalone, embedded etcd and local storage) on free ports.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PG_BIN_DIRS = tuple(Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14))
PG_USER = "postgres"  # the OS user that owns the cluster when we run as root; also the database superuser


def pg_bin_dir() -> Path | None:
    """Where initdb and pg_ctl live, or None when PostgreSQL is not installed."""
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", PG_USER, "--", *cmd]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh PostgreSQL cluster; yields its URL and stops it (and deletes its files) afterwards."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    # Under /tmp itself: pytest's tmp dirs are private to root, where the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="mmsearch-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        owner = pwd.getpwnam(PG_USER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = free_port()
    run = {"check": True, "capture_output": True, "text": True}
    try:
        subprocess.run(
            _as_cluster_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8"]),
            **run,  # type: ignore[call-overload]
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"]
        subprocess.run(_as_cluster_owner(start), **run)  # type: ignore[call-overload]
        try:
            yield f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"
        finally:
            stop = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run(_as_cluster_owner(stop), check=False, capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def milvus_server() -> Iterator[str]:
    """A Milvus standalone server with its data in a fresh temp dir; yields its http:// URI."""
    import milvus
    from milvus import MilvusServer, MilvusServerConfig

    root = Path(tempfile.mkdtemp(prefix="mmsearch-milvus-"))
    config = MilvusServerConfig(template=str(_milvus_template(root)))
    # The package sets this only when it uses its own template.
    config.glog_conf_file = str(Path(milvus.__file__).parent / "data" / "glog.conf")
    server = MilvusServer(config)
    server.set_base_dir(str(root))
    server.listen_port = free_port()
    try:
        server.start()
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _milvus_template(root: Path) -> Path:
    """The package's config template, with the embedded etcd on free ports.

    The template fixes only etcd's client port; its peer port stays etcd's default 2380, so a second server on
    the same machine (another test session, a benchmark) fails to start. An etcd config file moves both.
    """
    import milvus

    client, peer = free_port(), free_port()
    etcd = root / "embed-etcd.yaml"
    etcd.write_text(
        f"name: default\nlisten-client-urls: http://127.0.0.1:{client}\nadvertise-client-urls: http://127.0.0.1:{client}\n"
        f"listen-peer-urls: http://127.0.0.1:{peer}\ninitial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
        f"initial-cluster: default=http://127.0.0.1:{peer}\n"
    )
    text = (Path(milvus.__file__).parent / "data" / "config.yaml.template").read_text()
    text = text.replace("localhost:{{ etcd_port(int): 2379 }}", f"127.0.0.1:{client}")
    anchor = "    dir: {{ etcd_data_dir }}\n"
    if anchor not in text:
        raise RuntimeError("the milvus package's config template changed: cannot place the etcd config")
    text = text.replace(anchor, f"{anchor}  config:\n    path: {etcd}\n", 1)
    template = root / "milvus.yaml.template"
    template.write_text(text)
    return template
