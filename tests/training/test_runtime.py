"""Devices, GPU slots, determinism, the compile cache and checkpoints, on the CPU.

The GPU paths are exercised with simulated devices: fake GPU lists for the slot claims, a
patched ``torch.cuda`` for the device policy and the per-job GPU.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from trainact.training import checkpoints, gpu_slots, job, random_state
from trainact.training import device as device_policy


@pytest.fixture(autouse=True)
def fresh_claim(monkeypatch, tmp_path):
    """Each test is a fresh process as far as the GPU claim goes, with its own slot folder."""
    monkeypatch.setattr(gpu_slots, "_CLAIMED", {})
    monkeypatch.setenv(gpu_slots.SLOT_DIR_ENV, str(tmp_path / "slots"))
    monkeypatch.delenv(device_policy.DEVICE_ENV, raising=False)


# ------------------------------------------------------------------------------ GPU slots


def test_slots_spread_over_the_gpus_first_then_share_them(tmp_path):
    ids = ["GPU-aaaa", "GPU-bbbb"]
    held = [gpu_slots.claim_slot(ids, tmp_path) for _ in range(5)]
    assert [(index, slot) for index, slot, _ in held] == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]
    assert gpu_slots.slot_holders(ids, tmp_path) == [3, 2]
    held[1][2].close()  # the job on GPU 1, slot 0 ends
    index, slot, _ = gpu_slots.claim_slot(ids, tmp_path)
    assert (index, slot) == (1, 0)


def test_a_slot_is_held_by_another_process_until_it_dies(tmp_path):
    """flock is per process (open file): a live holder blocks the slot, a killed one frees it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from trainact.training.gpu_slots import claim_slot
                handle = claim_slot(["GPU-only"], Path({str(tmp_path)!r}))
                print(handle[:2], flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "(0, 0)"
        index, slot, handle = gpu_slots.claim_slot(["GPU-only"], tmp_path)
        assert (index, slot) == (0, 1)
        handle.close()
    finally:
        holder.kill()
        holder.wait()
    index, slot, _ = gpu_slots.claim_slot(["GPU-only"], tmp_path)
    assert (index, slot) == (0, 0)


@pytest.fixture
def fake_gpus(monkeypatch):
    """torch.cuda as on a machine with two GPUs (no CUDA call reaches the driver)."""
    current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i: SimpleNamespace(uuid=f"0000-000{i}", name=f"Fake {i}")
    )
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: current.append(torch.device(device)))
    return current


def test_each_job_gets_its_own_gpu_while_there_are_free_ones(fake_gpus, monkeypatch):
    """Three jobs (simulated: the claim is forgotten, the lock kept open): cuda:0, cuda:1, then
    the second slot of cuda:0. Each job makes its GPU current and keeps it for its lifetime."""
    devices = []
    for _ in range(3):
        monkeypatch.setattr(gpu_slots, "_CLAIMED", {})
        devices.append(device_policy.resolve_device("auto"))
        assert device_policy.resolve_device("cuda") == devices[-1]  # claimed once per process
        assert gpu_slots._CLAIMED["lock"] is not None
    assert [str(d) for d in devices] == ["cuda:0", "cuda:1", "cuda:0"]
    assert fake_gpus[-1] == torch.device("cuda:0")
    info = device_policy.device_description(devices[-1]) | {"driver": None}
    assert info["gpu_id"] == "GPU-0000-0000" and info["slot"] == 1 and info["index"] == 0


def test_an_explicit_gpu_is_taken_as_given(fake_gpus):
    assert device_policy.resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(device_policy.DeviceUnavailable, match="only 2 GPU"):
        device_policy.resolve_device("cuda:2")


# --------------------------------------------------------------------------- device policy


def test_cpu_and_auto_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_policy, "nvidia_gpu_visible", lambda: False)
    monkeypatch.setattr(device_policy, "_mps_available", lambda: False)
    assert device_policy.resolve_device("cpu") == torch.device("cpu")
    assert device_policy.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(device_policy.DeviceUnavailable, match="'cuda' requested"):
        device_policy.resolve_device("cuda")
    with pytest.raises(device_policy.DeviceUnavailable, match="'gpu0'"):
        device_policy.resolve_device("gpu0")


def test_the_environment_sets_the_default_policy(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_policy, "nvidia_gpu_visible", lambda: False)
    monkeypatch.setenv(device_policy.DEVICE_ENV, "cuda")
    with pytest.raises(device_policy.DeviceUnavailable):
        device_policy.resolve_device(None)
    monkeypatch.setenv(device_policy.DEVICE_ENV, "cpu")
    assert device_policy.resolve_device(None) == torch.device("cpu")


@pytest.mark.parametrize("policy", ["auto", "cuda"])
def test_a_gpu_that_torch_cannot_use_is_an_error_that_says_why(monkeypatch, policy):
    """The pinned wheel is a CUDA 13 build; with an older driver torch sees no GPU. Instead of
    training on the CPU for hours, the job stops and names the driver, the build and the fix."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_policy, "nvidia_gpu_visible", lambda: True)
    monkeypatch.setattr(device_policy, "nvidia_driver_version", lambda: "535.104.05")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "init", lambda: (_ for _ in ()).throw(RuntimeError("driver too old")))
    with pytest.raises(device_policy.DeviceUnavailable) as error:
        device_policy.resolve_device(policy)
    message = str(error.value)
    for needle in (
        "driver 535.104.05",
        "CUDA 13.0",
        "driver too old",
        device_policy.CUDA12_INDEX,
        "--device cpu",
    ):
        assert needle in message
    assert device_policy.resolve_device("cpu") == torch.device("cpu")  # the way out it names


def test_hidden_gpus_are_not_visible(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert device_policy.nvidia_gpu_visible() is False


def test_the_train_command_fails_fast_with_the_reason(monkeypatch, tmp_path, capsys):
    from trainact.cli import main

    monkeypatch.setenv(device_policy.DEVICE_ENV, "cuda")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code = main(["train", "--data", str(tmp_path / "missing.npz"), "--size", "small", "--activation", "relu",
                 "--out-dir", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "'cuda' requested" in err or "cannot use it" in err


# ------------------------------------------------------------------ determinism, caches


@pytest.fixture
def restore_backends():
    saved = job.determinism_settings()
    yield
    torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = saved["cudnn_deterministic"]
    torch.backends.cuda.matmul.allow_tf32 = saved["tf32_matmul"]
    torch.backends.cudnn.allow_tf32 = saved["tf32_cudnn"]
    torch.use_deterministic_algorithms(saved["deterministic_algorithms"])


def test_determinism_on_cuda_and_nothing_on_the_cpu(restore_backends, monkeypatch):
    torch.backends.cudnn.benchmark = True
    on_cpu = job.configure_determinism(torch.device("cpu"))
    assert on_cpu["cudnn_benchmark"] is True  # the CPU is left alone
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    on_gpu = job.configure_determinism(torch.device("cuda", 0))  # sets flags only
    assert on_gpu == {
        "cudnn_benchmark": False,
        "cudnn_deterministic": True,
        "deterministic_algorithms": True,
        "tf32_matmul": False,
        "tf32_cudnn": False,
        "cublas_workspace": ":4096:8",
    }


def test_the_compile_cache_is_persistent_unless_the_user_chose_one(monkeypatch, tmp_path):
    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", job.COMPILE_CACHE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    caches = job.configure_compile_cache()
    assert caches["TORCHINDUCTOR_CACHE_DIR"] == str(
        tmp_path / "cache" / "trainact" / "torch-compile" / "inductor"
    )
    assert caches["TRITON_CACHE_DIR"] == str(tmp_path / "cache" / "trainact" / "torch-compile" / "triton")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/mine")
    assert job.configure_compile_cache()["TORCHINDUCTOR_CACHE_DIR"] == "/mine"


def test_rng_state_round_trip_and_a_cpu_resume_drops_a_gpu_state():
    random_state.seed_everything(5)
    state = random_state.rng_state(torch.device("cpu"))
    assert "cuda" not in state
    first = (torch.rand(3), __import__("random").random())
    random_state.set_rng_state({**state, "cuda": torch.zeros(16, dtype=torch.uint8)}, torch.device("cpu"))
    assert torch.equal(torch.rand(3), first[0]) and __import__("random").random() == first[1]


# ------------------------------------------------------------------------------ checkpoints


def test_load_checkpoint_missing_readable_and_damaged(tmp_path, caplog):
    path = tmp_path / "checkpoint.pt"
    assert checkpoints.load_checkpoint(path) is None
    checkpoints.save_checkpoint(path, {"weights": torch.ones(2), "note": "ok"})
    loaded = checkpoints.load_checkpoint(path)
    assert loaded["note"] == "ok" and loaded["weights"].device.type == "cpu"
    path.write_bytes(b"not a zip file")
    with caplog.at_level("WARNING"):
        assert checkpoints.load_checkpoint(path) is None
    aside = list(tmp_path.glob("checkpoint.pt.damaged-*"))
    assert not path.exists() and len(aside) == 1 and aside[0].read_bytes() == b"not a zip file"
    assert str(aside[0]) in caplog.text
    torch.save([1, 2], path)  # readable, but not a checkpoint
    assert checkpoints.load_checkpoint(path) is None and not path.exists()


def test_checkpoint_clock(monkeypatch):
    monkeypatch.setenv(checkpoints.INTERVAL_ENV, "0")
    assert checkpoints.CheckpointClock().due()
    monkeypatch.setenv(checkpoints.INTERVAL_ENV, "3600")
    clock = checkpoints.CheckpointClock()
    assert not clock.due()
    clock.last -= 3601
    assert clock.due()
    clock.saved()
    assert not clock.due()
    monkeypatch.delenv(checkpoints.INTERVAL_ENV)
    assert checkpoints.CheckpointClock().interval == checkpoints.CHECKPOINT_INTERVAL_S == 60
    monkeypatch.setenv(checkpoints.INTERVAL_ENV, "soon")
    with pytest.raises(ValueError, match="TRAINACT_CHECKPOINT_INTERVAL='soon'"):
        checkpoints.CheckpointClock()


@pytest.mark.slow
def test_the_prepared_gpu_check_runs_its_steps_on_the_cpu(tmp_path):
    """tools/gpu_check.py is meant for a GPU; its kill-and-resume, sharing, graph (static
    buffers on a CPU) and packs steps run here on the CPU with small data, and its summary says
    they passed (the estimate's arithmetic: tests/bench/test_estimate.py)."""
    import json
    import os

    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(repo / "tools" / "gpu_check.py"), "--device", "cpu",
         "--skip", "bench,smoke,estimate",
         "--images", "400", "--jobs", "2", "--resume-activations", "relu", "--graph-steps", "4",
         "--graph-networks", "small-relu,small-lc",
         "--pack-images", "256", "--pack-counts", "2"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "OUT": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["ok"] and set(summary["steps"]) == {"environment", "resume", "sharing", "graph", "packs"}
    resumed = summary["steps"]["resume"]["result"]["relu"]
    assert resumed["killed_after_epochs"] >= 1 and resumed["history_equal"] and resumed["weights_equal"]
    assert summary["steps"]["sharing"]["result"]["jobs"] == 2
    graphed = summary["steps"]["graph"]["result"]
    assert graphed["mode"] == "static" and set(graphed["networks"]) == {"small-relu", "small-lc"}
    assert all(network["weights_equal"] for network in graphed["networks"].values())
    packed = summary["steps"]["packs"]["result"]["pack2"]  # a pack of 2 against 2 single jobs
    assert packed["pack_s"] > 0 and packed["one_per_process_s"] > 0


# ------------------------------------------------------------------ checkpoint rules (pinned values)


@pytest.mark.parametrize(
    "text, seconds",
    [(None, 60.0), ("", 60.0), ("0", 0.0), ("2.5", 2.5), ("120", 120.0)],
)
def test_checkpoint_interval_from_the_environment(monkeypatch, text, seconds):
    assert checkpoints.INTERVAL_ENV == "TRAINACT_CHECKPOINT_INTERVAL"
    if text is None:
        monkeypatch.delenv(checkpoints.INTERVAL_ENV, raising=False)
    else:
        monkeypatch.setenv(checkpoints.INTERVAL_ENV, text)
    value = checkpoints.checkpoint_interval()
    assert value == seconds and type(value) is float


@pytest.mark.parametrize("text", ["-1", "-0.5", "nan", "soon"])
def test_checkpoint_interval_rejects_negative_and_non_numbers(monkeypatch, text):
    monkeypatch.setenv(checkpoints.INTERVAL_ENV, text)
    with pytest.raises(ValueError) as caught:
        checkpoints.checkpoint_interval()
    assert str(caught.value) == f"TRAINACT_CHECKPOINT_INTERVAL='{text}': must be a number of seconds >= 0"


def test_checkpoint_clock_is_due_exactly_at_the_interval(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(checkpoints, "time", SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setenv(checkpoints.INTERVAL_ENV, "3600")
    clock = checkpoints.CheckpointClock(interval=5)  # an explicit interval wins over the environment
    assert clock.interval == 5.0 and type(clock.interval) is float and clock.last == 1000.0
    now[0] = 1004.9
    assert not clock.due()
    now[0] = 1005.0
    assert clock.due()  # ">= interval": due at exactly 5 s
    clock.saved()
    assert clock.last == 1005.0 and not clock.due()
    assert checkpoints.CheckpointClock(interval=0).due()  # 0: after every epoch
    assert checkpoints.CheckpointClock().interval == 3600.0


def test_set_aside_names_the_file_with_the_time(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"broken")
    monkeypatch.setattr(
        checkpoints, "time", SimpleNamespace(strftime={"%Y%m%d-%H%M%S": "20260102-030405"}.__getitem__)
    )
    target = checkpoints.set_aside(str(path))
    assert target == tmp_path / "checkpoint.pt.damaged-20260102-030405"
    assert isinstance(target, Path)
    assert target.read_bytes() == b"broken" and not path.exists()


def test_save_checkpoint_writes_a_plain_dict_atomically(tmp_path):
    from collections import OrderedDict

    path = tmp_path / "checkpoint.pt"
    checkpoints.save_checkpoint(path, OrderedDict(epoch=3, weights=torch.arange(3.0)))
    raw = torch.load(path, weights_only=False)
    assert type(raw) is dict and raw["epoch"] == 3 and torch.equal(raw["weights"], torch.arange(3.0))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def test_a_checkpoint_with_python_and_numpy_random_states_is_read_back(tmp_path):
    """The states are no plain tensors: reading them needs torch.load(weights_only=False)."""
    import random

    import numpy as np

    path = tmp_path / "checkpoint.pt"
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    checkpoints.save_checkpoint(path, state)
    loaded = checkpoints.load_checkpoint(path)
    assert loaded is not None and loaded["python"] == state["python"] and path.exists()
    assert loaded["numpy"][0] == "MT19937" and np.array_equal(loaded["numpy"][1], state["numpy"][1])


def test_a_damaged_checkpoint_warning_names_both_files_and_the_error(tmp_path, caplog):
    path = tmp_path / "checkpoint.pt"
    torch.save([1, 2], path)  # readable, but a list
    with caplog.at_level("WARNING", logger="trainact.training.checkpoints"):
        assert checkpoints.load_checkpoint(str(path)) is None
    (aside,) = tmp_path.glob("checkpoint.pt.damaged-*")
    (record,) = caplog.records
    assert record.getMessage() == (
        f"checkpoint {path} cannot be read (TypeError: expected a dict, found list); "
        f"moved it to {aside} and starting over"
    )
