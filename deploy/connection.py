#!/usr/bin/env python3
"""Connection info for a controller on fixed ports: generate it, check it, wrap it in a Secret.

Standard library only: it runs in the image's entrypoint and on an admin's laptop alike.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

ENGINE_FILE = "ipcontroller-engine.json"
CLIENT_FILE = "ipcontroller-client.json"
KEY_FILE = "key"
TOKEN_FILE = "lab-token"
# ipcontroller's port consumption with the default broadcast depth of 1: the engine side takes
# registration, control, mux, task, iopub, hb_ping, hb_pong and 2 broadcast leaves; the client
# side control, mux, task, iopub, notification, broadcast (registration is shared); then 3
# loopback-only ports (2 internal broadcast links and the monitor) that no Service exposes.
ENGINE_CHANNELS = ("registration", "control", "mux", "task", "iopub", "hb_ping", "hb_pong")
BROADCAST_LEAVES = 2
CLIENT_CHANNELS = ("control", "mux", "task", "iopub", "notification", "broadcast")
EXTERNAL_PORTS = len(ENGINE_CHANNELS) + BROADCAST_LEAVES + len(CLIENT_CHANNELS)
INTERNAL_PORTS = 3


class ConnectionInfoError(ValueError):
    """Bad connection settings or a Secret that disagrees with the controller's arguments."""


def parse_ports(spec: str) -> list[int]:
    """Ports of an ipcontroller ``--ports`` spec such as ``"10101-10120"`` or ``"1,3-5"``.

    Example:
        >>> parse_ports("10101-10103,10110")
        [10101, 10102, 10103, 10110]
    """
    ports: list[int] = []
    for part in str(spec).split(","):
        start, _, end = part.strip().partition("-")
        try:
            lo = int(start)
            hi = int(end) if end else lo
        except ValueError:
            raise ConnectionInfoError(
                f"--ports: expected ranges like '10101-10120' or '10101,10102'; "
                f"received {spec!r}"
            ) from None
        if not 1 <= lo <= hi <= 65535:
            raise ConnectionInfoError(f"--ports: {part!r} is not a range within 1-65535")
        ports.extend(range(lo, hi + 1))
    if len(set(ports)) != len(ports):
        raise ConnectionInfoError(f"--ports: {spec!r} names a port twice")
    if len(ports) < EXTERNAL_PORTS:
        raise ConnectionInfoError(
            f"--ports: the controller needs at least {EXTERNAL_PORTS} ports reachable by engines "
            f"and clients ({EXTERNAL_PORTS + INTERNAL_PORTS} to fix every port); "
            f"received {len(ports)} in {spec!r}"
        )
    return ports


def connection_info(key: str, location: str, ports: str, ip: str = "0.0.0.0") -> dict:
    """The engine and client connection dicts ``ipcontroller`` writes for these settings.

    Args:
        key: the HMAC key (Session.key) as text.
        location: the name or address engines and clients use to reach the controller (the
            Kubernetes Service name).
        ports: the ``--ports`` spec the controller is started with.
        ip: the ``--ip`` the controller binds.

    Returns:
        ``{"engine": {...}, "client": {...}}`` equal to ipcontroller's two JSON files.

    Example:
        >>> info = connection_info("k", "mao-controller", "10101-10120")
        >>> info["engine"]["registration"], info["client"]["notification"]
        (10101, 10114)
    """
    if not key:
        raise ConnectionInfoError("connection key: expected a non-empty HMAC key; received ''")
    pool = iter(parse_ports(ports))
    common = {
        "key": key, "curve_serverkey": None, "location": location,
        "pack": "json", "unpack": "json", "signature_scheme": "hmac-sha256",
    }
    interface = f"tcp://{ip}"
    engine: dict = {"ssh": "", "interface": interface}
    engine.update({ch: next(pool) for ch in ENGINE_CHANNELS})
    engine["broadcast"] = [next(pool) for _ in range(BROADCAST_LEAVES)]
    client: dict = {"ssh": "", "interface": interface, "registration": engine["registration"]}
    for ch in CLIENT_CHANNELS:
        client[ch] = next(pool)
        if ch == "task":
            client["task_scheme"] = "leastload"
    return {"engine": {**engine, **common}, "client": {**client, **common}}


def exposed_ports(info: dict) -> list[int]:
    """Every port engines and clients connect to (what the Service and policies must open)."""
    ports: set[int] = set()
    for side in ("engine", "client"):
        for name, value in info[side].items():
            if name in ("location", "key", "curve_serverkey") or isinstance(value, str):
                continue
            ports.update(value if isinstance(value, list) else [value])
    return sorted(p for p in ports if isinstance(p, int))


def controller_settings(argv: Sequence[str]) -> dict[str, str]:
    """``ip``, ``location`` and ``ports`` from ipcontroller arguments (``--name=value``)."""
    found: dict[str, str] = {}
    args = list(argv)
    for i, arg in enumerate(args):
        for name in ("ip", "location", "ports"):
            flag = f"--{name}"
            if arg.startswith(flag + "="):
                found[name] = arg.split("=", 1)[1]
            elif arg == flag and i + 1 < len(args):
                found[name] = args[i + 1]
    missing = [n for n in ("ip", "location", "ports") if n not in found]
    if missing:
        raise ConnectionInfoError(
            f"controller arguments: expected --ip, --location and --ports (fixed ports are "
            f"what the Service exposes); missing {missing} in {list(argv)}"
        )
    return found


def write_dir(info: dict, key: str, token: str, out: Path) -> list[Path]:
    """Write the files a Secret holds into ``out`` (mode 0600), one file per Secret key."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        ENGINE_FILE: json.dumps(info["engine"], indent=2),
        CLIENT_FILE: json.dumps(info["client"], indent=2),
        KEY_FILE: key,
        TOKEN_FILE: token,
    }
    paths = []
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        path.chmod(0o600)
        paths.append(path)
    return paths


def secret_manifest(info: dict, key: str, token: str, name: str, namespace: str | None) -> dict:
    """A Kubernetes Secret (``stringData``) holding the connection files, key and lab token."""
    meta: dict = {"name": name, "labels": {"app.kubernetes.io/part-of": "mao-lab"}}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
        "stringData": {
            ENGINE_FILE: json.dumps(info["engine"], indent=2),
            CLIENT_FILE: json.dumps(info["client"], indent=2),
            KEY_FILE: key,
            TOKEN_FILE: token,
        },
    }


def check_dir(conn_dir: Path, controller_args: Sequence[str]) -> dict:
    """Check the Secret mounted at ``conn_dir`` against the controller's arguments.

    Returns the expected connection info; raises ConnectionInfoError naming every difference,
    so a controller never starts on ports or a location its engines do not expect.
    """
    settings = controller_settings(controller_args)
    key_path = conn_dir / KEY_FILE
    if not key_path.is_file():
        raise ConnectionInfoError(f"connection Secret: expected the HMAC key at {key_path}; "
                               "create the Secret with deploy/connection.py secret")
    info = connection_info(key_path.read_text().strip(), settings["location"], settings["ports"],
                           settings["ip"])
    for side, fname in (("engine", ENGINE_FILE), ("client", CLIENT_FILE)):
        path = conn_dir / fname
        if not path.is_file():
            continue  # the controller needs only the key; the files are for engines/clients
        held = json.loads(path.read_text())
        diff = {k: (held.get(k), v) for k, v in info[side].items()
                if k != "key" and held.get(k) != v}
        if held.get("key") != info[side]["key"]:  # never print the key itself
            diff["key"] = (f"{fname}'s key", f"the key in {KEY_FILE}")
        if diff:
            raise ConnectionInfoError(
                f"connection Secret {fname} disagrees with the controller arguments "
                f"{list(controller_args)}: (secret, expected) = {diff}. Regenerate the Secret "
                f"with the same --location and --ports"
            )
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """``connection.py secret|dir|check``: see ``--help``."""
    p = argparse.ArgumentParser(prog="connection.py", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd, text in (("secret", "print a Secret manifest (YAML-compatible JSON)"),
                      ("dir", "write the Secret's files into a directory")):
        s = sub.add_parser(cmd, help=text)
        s.add_argument("--location", default="mao-controller", help="controller Service name")
        s.add_argument("--ports", default="10101-10120", help="the controller's --ports")
        s.add_argument("--ip", default="0.0.0.0", help="the controller's --ip")
        s.add_argument("--key", default=None, help="HMAC key (default: 32 random bytes, hex)")
        s.add_argument("--token", default=None, help="JupyterLab token (default: random)")
        if cmd == "secret":
            s.add_argument("--name", default="mao-connection")
            s.add_argument("--namespace", default=None)
        else:
            s.add_argument("out", type=Path)
    c = sub.add_parser("check", help="check a mounted Secret against ipcontroller arguments")
    c.add_argument("conn_dir", type=Path)
    c.add_argument("controller_args", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    try:
        if args.cmd == "check":
            cargs = [a for a in args.controller_args if a != "--"]
            check_dir(args.conn_dir, cargs)
            return 0
        key = args.key or secrets.token_hex(32)
        token = args.token or secrets.token_hex(24)
        info = connection_info(key, args.location, args.ports, args.ip)
        if args.cmd == "secret":
            print(json.dumps(secret_manifest(info, key, token, args.name, args.namespace),
                             indent=2))
        else:
            for path in write_dir(info, key, token, args.out):
                print(path)
    except ConnectionInfoError as exc:
        print(f"connection.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
