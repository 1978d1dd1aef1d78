"""Discovering audio under a folder that holds bad paths: nothing crashes, hangs or vanishes."""

from __future__ import annotations

import os

import pytest
import soundfile as sf

from audio_synth_core.errors import CatalogError
from audio_synth_core.inputs.datasets import discover
from tests.factories import SENTENCES, speech


@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "messy"
    (root / "alice").mkdir(parents=True)
    audio, rate = speech(SENTENCES[0])
    sf.write(root / "alice" / "one.wav", audio, rate)
    sf.write(root / "two.flac", audio, rate)
    (root / "loop_a.wav").symlink_to("loop_b.wav")
    (root / "loop_b.wav").symlink_to("loop_a.wav")
    (root / "dangling.wav").symlink_to("gone.wav")
    (root / "x.wav").mkdir()  # a directory named like audio, holding audio of its own
    sf.write(root / "x.wav" / "inner.wav", audio, rate)
    os.mkfifo(root / "fifo.wav")
    (root / "alice" / "up").symlink_to("..")  # a directory loop: walking into it never ends
    (root / "self.ogg").symlink_to(".")  # a link to a directory, named like audio
    (root / "notes.txt").write_text("not audio")
    for name in (b"caf\xe9.wav", b"caf\xe8.wav"):  # Latin-1 names: not valid UTF-8
        with open(os.fsencode(root) + b"/" + name, "wb") as fh:
            fh.write(b"RIFF")
    return root


@pytest.mark.timeout(60)
def test_walk_lists_every_audio_named_entry_without_following_loops(messy_folder):
    items = discover(str(messy_folder)).to_pylist()
    by_name = {i["catalog_id"]: i for i in items}
    assert sorted(by_name) == [
        "alice/one",
        "caf\ufffd",  # both Latin-1 names: one item, whose read fails naming the problem
        "dangling",
        "fifo",
        "loop_a",
        "loop_b",
        "self",
        "two",
        "x",
        "x.wav/inner",
    ]
    # Each becomes an item so validation records why it cannot be read; none was opened here.
    assert by_name["x"]["audio_uri"] == f"{messy_folder}/x.wav"
    assert by_name["alice/one"]["attributes"] == '{"speaker": "alice"}'
    assert {i["audio_format"] for i in items} == {"wav", "flac", None}
    assert len({i["id"] for i in items}) == len(items)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad", ["loop", "directory"])
def test_an_unreadable_metadata_table_is_a_clear_error(tmp_path, bad):
    root = tmp_path / "ds"
    root.mkdir()
    if bad == "loop":
        (root / "metadata.csv").symlink_to("other.csv")
        (root / "other.csv").symlink_to("metadata.csv")
    else:
        (root / "metadata.csv").mkdir()
    with pytest.raises(CatalogError, match=r"cannot read metadata table '.*/ds/metadata\.csv'"):
        discover(str(root))
