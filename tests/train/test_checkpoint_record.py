"""`read_checkpoint_records`: a checkpoint's recipe and settings without torch (for `train --remote --resume`)."""

from __future__ import annotations

import pickle
import zipfile

import pytest
import torch

from visionassist_seg.errors import VasegError
from visionassist_seg.train.checkpoint import RunState, load_checkpoint, save_checkpoint
from visionassist_seg.train.checkpoint_record import LeftOut, read_checkpoint_records
from visionassist_seg.train.model import ShallowNet


@pytest.fixture
def checkpoint_file(tmp_path):
    model = ShallowNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    run = RunState(model, optimizer, torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer), torch.amp.GradScaler("cpu", enabled=False))
    run.epoch, run.history = 2, [{"epoch": 1, "val_pupil_iou": 0.5}, {"epoch": 2, "val_pupil_iou": 0.75}]
    path = tmp_path / "last.pt"
    save_checkpoint(path, run.checkpoint(recipe={"source": "hub", "hf_repo": "me/eyes", "scale": 0.5}, settings={"seed": 3}))
    return path


def test_records_equal_what_torch_loads_and_tensors_are_left_out(checkpoint_file):
    records = read_checkpoint_records(checkpoint_file)
    loaded = load_checkpoint(checkpoint_file, torch.device("cpu"))
    for key in ("recipe", "settings", "epoch", "metrics", "best"):
        assert records[key] == loaded[key], key
    assert list(records["model"]) == list(loaded["model"])  # the names, in order
    assert all(isinstance(value, LeftOut) for value in records["model"].values())
    assert isinstance(records["rng"]["torch"], LeftOut) and records["rng"]["python"] == loaded["rng"]["python"]


def _archive(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("last/data.pkl", payload)
    return path


class Foreign:
    def __reduce__(self):
        return (print, ("never run",))


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p.write_bytes(b"onnx protobuf bytes"), "not a vaseg training checkpoint"),
        (lambda p: _archive(p, pickle.dumps({"recipe": Foreign()})), "builtins.print"),
        (lambda p: _archive(p, pickle.dumps({"recipe": {}})), "lacks model, optimizer"),
        (lambda p: _archive(p, pickle.dumps([1, 2])), "lacks model"),
        (lambda p: _archive(p, b"\x80\x04truncated"), "not a vaseg training checkpoint"),
    ],
)
def test_anything_else_is_one_message_naming_the_file(tmp_path, make, expected, capsys):
    path = tmp_path / "weird.pt"
    make(path)
    with pytest.raises(VasegError, match=expected) as caught:
        read_checkpoint_records(path)
    assert str(path) in caught.value.message
    assert "never run" not in capsys.readouterr().out  # the foreign callable was not called


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(VasegError, match="does not exist"):
        read_checkpoint_records(tmp_path / "nope.pt")
