"""deploy/connection.py: the Secret's connection files, their port layout, the preflight check."""

from __future__ import annotations

import json
import subprocess
import sys

import kubernetes_validate
import pytest
from deploy_helpers import DEPLOY


def test_parse_ports_ranges_and_lists(connection):
    assert connection.parse_ports("10101-10120") == list(range(10101, 10121))
    assert connection.parse_ports("20001-20014,20020") == list(range(20001, 20015)) + [20020]


@pytest.mark.parametrize("spec, words", [
    ("10101-10110", ["at least 15", "received 10"]),
    ("abc", ["expected ranges", "'abc'"]),
    ("10101-10120,10105", ["twice"]),
    ("70000-70020", ["1-65535"]),
])
def test_parse_ports_errors_say_what_was_wrong(connection, spec, words):
    with pytest.raises(connection.ConnectionInfoError) as err:
        connection.parse_ports(spec)
    for w in words:
        assert w in str(err.value)


def test_layout_matches_ipcontrollers_port_order(connection):
    info = connection.connection_info("k3y", "mao-controller", "10101-10120")
    eng, cli = info["engine"], info["client"]
    assert eng["interface"] == cli["interface"] == "tcp://0.0.0.0"
    assert [eng[c] for c in ("registration", "control", "mux", "task", "iopub", "hb_ping",
                             "hb_pong")] == list(range(10101, 10108))
    assert eng["broadcast"] == [10108, 10109]
    assert cli["registration"] == 10101
    assert [cli[c] for c in ("control", "mux", "task", "iopub", "notification",
                             "broadcast")] == list(range(10110, 10116))
    assert eng["key"] == cli["key"] == "k3y"
    assert eng["location"] == "mao-controller" and eng["signature_scheme"] == "hmac-sha256"
    assert connection.exposed_ports(info) == list(range(10101, 10116))


def test_controller_settings_from_args(connection):
    args = ["--ip=0.0.0.0", "--location", "svc", "--ports=1-20", "--log-level=20"]
    assert connection.controller_settings(args) == {"ip": "0.0.0.0", "location": "svc",
                                                    "ports": "1-20"}
    with pytest.raises(connection.ConnectionInfoError, match=r"missing \['ports'\]"):
        connection.controller_settings(["--ip=0.0.0.0", "--location=svc"])


def test_secret_manifest_is_a_valid_secret_holding_consistent_files(connection):
    info = connection.connection_info("abc", "mao-controller", "10101-10120")
    secret = connection.secret_manifest(info, "abc", "tok", "mao-connection", "mao")
    kubernetes_validate.validate(secret, "1.30", strict=True)
    data = secret["stringData"]
    assert set(data) == {"ipcontroller-engine.json", "ipcontroller-client.json", "key",
                         "lab-token"}
    assert json.loads(data["ipcontroller-engine.json"]) == info["engine"]
    assert json.loads(data["ipcontroller-client.json"]) == info["client"]
    assert data["key"] == "abc" and data["lab-token"] == "tok"


def test_cli_secret_makes_fresh_keys(tmp_path):
    outs = [subprocess.run([sys.executable, str(DEPLOY / "connection.py"), "secret",
                            "--namespace", "mao"], capture_output=True, text=True, check=True)
            for _ in range(2)]
    keys = [json.loads(o.stdout)["stringData"]["key"] for o in outs]
    assert keys[0] != keys[1] and all(len(k) == 64 for k in keys)
    engine = json.loads(json.loads(outs[0].stdout)["stringData"]["ipcontroller-engine.json"])
    assert engine["key"] == keys[0] and engine["location"] == "mao-controller"


def test_check_accepts_matching_and_names_each_mismatch(connection, tmp_path):
    info = connection.connection_info("secret-key", "mao-controller", "10101-10120")
    connection.write_dir(info, "secret-key\n", "tok", tmp_path)  # kubelet keeps a newline
    args = ["--ip=0.0.0.0", "--location=mao-controller", "--ports=10101-10120"]
    assert connection.check_dir(tmp_path, args) == info
    with pytest.raises(connection.ConnectionInfoError) as err:
        connection.check_dir(tmp_path, ["--ip=0.0.0.0", "--location=other", "--ports=10101-10120"])
    assert "location" in str(err.value) and "'other'" in str(err.value)
    (tmp_path / "key").write_text("another")
    with pytest.raises(connection.ConnectionInfoError) as err:
        connection.check_dir(tmp_path, args)
    assert "key" in str(err.value) and "another" not in str(err.value)  # never print a key
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600


def test_cli_check_exit_codes(connection, tmp_path):
    script = str(DEPLOY / "connection.py")
    subprocess.run([sys.executable, script, "dir", "--ports", "30001-30020", str(tmp_path)],
                   check=True, capture_output=True)
    ok = subprocess.run([sys.executable, script, "check", str(tmp_path), "--", "--ip=0.0.0.0",
                         "--location=mao-controller", "--ports=30001-30020"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, script, "check", str(tmp_path), "--", "--ip=0.0.0.0",
                          "--location=mao-controller", "--ports=30002-30021"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "registration" in bad.stderr


def test_healthcheck_reports_unreachable_engine_controller(healthcheck, monkeypatch, capsys):
    info = {"interface": "tcp://127.0.0.1", "registration": 9, "location": "x"}
    monkeypatch.setenv("IPP_CONNECTION_INFO", json.dumps(info))
    monkeypatch.setenv("MAO_HEALTHCHECK_TIMEOUT", "0.5")
    assert healthcheck.main(["engine"]) == 1
    assert "unhealthy" in capsys.readouterr().err
    assert healthcheck.main(["nonsense"]) == 2
    assert healthcheck._target({"interface": "tcp://0.0.0.0", "registration": 5,
                                "location": "mao-controller"}) == ("mao-controller", 5)
