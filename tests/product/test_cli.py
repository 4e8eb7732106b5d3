"""The mao-lab command: help, usage errors, devices, train with checkpoints and resume,
and the demo (the README's main job)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mao_lab.cli import main

SUBCOMMANDS = ["devices", "bench", "demo", "train", "lab"]


def _run(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "mao_lab.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: mao-lab {name}" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    ([], "required: COMMAND"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["demo", "--engines", "0"], "expected a positive integer; received 0"),
    (["demo", "--epochs", "many"], "expected a positive integer; received 'many'"),
    (["train"], "the following arguments are required: config"),
])
def test_bad_arguments_print_usage_and_fail(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: mao-lab" in err and needle in err


def test_devices_json_lists_numpy_and_opencl():
    res = _run("devices", "--json", "--no-calibrate")
    assert res.returncode == 0, res.stderr
    inv = json.loads(res.stdout)
    keys = [d["key"] for d in inv]
    assert keys[0] == "numpy" and any(k.startswith("opencl:") for k in keys)


def test_train_bad_config_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"model": {"zoo": "iris"}, "data": {"bundled": "iris"}, "epochz": 3}')
    assert main(["train", str(cfg)]) == 2
    assert "unknown config keys ['epochz']" in capsys.readouterr().err
    cfg.write_text("{not json")
    assert main(["train", str(cfg)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.json")]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_train_checkpoints_and_resumes(tmp_path):
    ckpt = tmp_path / "run"
    cfg = {
        "model": {"zoo": "iris"},
        "compile": {"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.5}},
                    "loss": "mse", "metrics": ["accuracy"]},
        "data": {"bundled": "iris", "test_fraction": 0.2, "seed": 0},
        "fit": {"epochs": 10, "batch_size": 4, "seed": 0},
        "device": "numpy",
        "checkpoint_dir": str(ckpt),
    }
    path = tmp_path / "iris.json"
    path.write_text(json.dumps(cfg))
    first = _run("train", str(path))
    assert first.returncode == 0, first.stderr
    assert "epoch 10/10" in first.stdout
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 10 and len(state["history"]["loss"]) == 10
    cfg["fit"]["epochs"] = 60
    path.write_text(json.dumps(cfg))
    second = _run("train", str(path), "--resume")
    assert second.returncode == 0, second.stderr
    assert "resuming after epoch 10" in second.stdout
    assert "epoch 11/60" in second.stdout and "epoch 10/60" not in second.stdout
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 60 and len(state["history"]["loss"]) == 60
    acc = float(second.stdout.split("accuracy=")[-1].split()[0])
    assert acc >= 0.9


@pytest.mark.slow
def test_demo_single_process_trains_lenet5():
    res = _run("demo", "--single", "--epochs", "1", "--device", "numpy")
    assert res.returncode == 0, res.stderr
    acc = float(res.stdout.split("test accuracy")[-1].split()[0])
    assert acc > 0.7, res.stdout


@pytest.mark.cluster
@pytest.mark.slow
def test_demo_on_a_local_cluster():
    res = _run("demo", "--epochs", "1")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "cluster throughput" in out and "cluster efficiency" in out
    acc = float(out.split("test accuracy")[-1].split()[0])
    assert acc > 0.7, out
