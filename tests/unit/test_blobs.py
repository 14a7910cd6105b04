"""Packs: what `put` wrote is read back whole; nothing else is."""

import os

import pytest

from trustfabric.blobs import PackStore


def test_parts_are_read_back_from_their_pack(tmp_path):
    packs = PackStore(tmp_path / "results")
    refs = packs.put([b"first", b"", b"third part"])
    assert [packs.get(ref) for ref in refs] == [b"first", b"", b"third part"]
    assert len({ref.split(":")[0] for ref in refs}) == 1  # one pack
    assert not list(tmp_path.glob("results/*/.*.partial"))
    assert (tmp_path / "results").stat().st_mode & 0o777 == 0o700  # blinded responses


@pytest.mark.parametrize("ref", ["", "zz:0:1", "a" * 64 + ":0:1", "a" * 64 + ":x:1",
                                 "../" + "a" * 61 + ":0:1"])
def test_a_reference_put_did_not_make_is_not_found(tmp_path, ref):
    packs = PackStore(tmp_path)
    [real] = packs.put([b"part"])
    assert packs.get(real) == b"part"
    with pytest.raises(LookupError):
        packs.get(ref)


def test_a_sweep_deletes_only_packs_written_before_its_time(tmp_path):
    packs = PackStore(tmp_path)
    [old] = packs.put([b"old"])
    [new] = packs.put([b"new"])
    old_pack = tmp_path / old[:2] / old.split(":")[0]
    os.utime(old_pack, (1_000, 1_000))
    assert packs.sweep(before=2_000) == 1
    with pytest.raises(LookupError):
        packs.get(old)
    assert packs.get(new) == b"new"
