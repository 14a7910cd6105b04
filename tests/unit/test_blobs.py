"""Packs: what `put` wrote is read back whole; nothing else is; retention deletes whole
hours of packs and nothing else."""

from datetime import UTC, datetime

import pytest

from trustfabric.blobs import PackStore


def test_parts_are_read_back_from_their_pack(tmp_path):
    packs = PackStore(tmp_path / "results", fsync=True)
    refs = packs.put([b"first", b"", b"third part"])
    assert [packs.get(ref) for ref in refs] == [b"first", b"", b"third part"]
    assert len({ref.split(":")[0] for ref in refs}) == 1  # one pack
    assert not list(tmp_path.glob("results/*/.*.partial"))
    assert (tmp_path / "results").stat().st_mode & 0o777 == 0o700  # blinded responses


def test_an_existing_directory_is_made_the_owners_alone(tmp_path):
    (tmp_path / "results").mkdir(mode=0o755)
    PackStore(tmp_path / "results").put([b"part"])
    assert (tmp_path / "results").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("ref", ["", "zz:0:1", "a" * 64 + ":0:1", "2026-12-07T11/" + "a" * 64,
                                 "2026-12-07T11/" + "a" * 64 + ":x:1",
                                 "../2026-12-07T11/" + "a" * 64 + ":0:1",
                                 "2026-12-07T11/" + "a" * 64 + ":0:1"])
def test_a_reference_put_did_not_make_is_not_found(tmp_path, ref):
    packs = PackStore(tmp_path)
    [real] = packs.put([b"part"], at=datetime(2026, 12, 7, 11, 30, tzinfo=UTC))
    assert real.startswith("2026-12-07T11/")
    assert packs.get(real) == b"part"
    with pytest.raises(LookupError):
        packs.get(ref)


def test_a_sweep_deletes_whole_hours_that_ended_before_its_time_and_nothing_else(tmp_path):
    packs = PackStore(tmp_path)
    [old] = packs.put([b"old"], at=datetime(2026, 1, 1, 10, 59, tzinfo=UTC))
    [new] = packs.put([b"new"], at=datetime(2026, 1, 1, 11, 0, tzinfo=UTC))
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "psi-server.key").write_bytes(b"not a pack")
    eleven = datetime(2026, 1, 1, 11, 0, tzinfo=UTC).timestamp()
    assert packs.sweep(before=eleven - 1) == 0  # 10:00-11:00 has not ended by then
    assert packs.sweep(before=eleven) == 1
    with pytest.raises(LookupError):
        packs.get(old)
    assert packs.get(new) == b"new"
    assert (tmp_path / "keys" / "psi-server.key").exists()
