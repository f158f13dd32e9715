"""A `run_python` figure kept for the trader: a PNG under the session's data dir, readable by the
owner only (dir 0700, file 0600), at most `keep` of them (the oldest pruned), names that say when."""

from __future__ import annotations

import stat
from pathlib import Path

from revagent.worker.figures import FigureStore

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def test_a_figure_is_saved_owner_only_and_old_ones_are_pruned(tmp_path: Path) -> None:
    store = FigureStore(tmp_path / "data" / "figures" / "paper", keep=3)
    paths = [store.save(PNG + bytes([i]), f"toolu_{i}") for i in range(5)]
    kept = sorted(store.directory.iterdir())
    assert kept == sorted(paths[-3:])  # the two oldest were pruned
    assert all(not p.exists() for p in paths[:2])
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    for p in kept:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600 and p.suffix == ".png"
    assert paths[-1].read_bytes() == PNG + bytes([4])
    assert "toolu_4" in paths[-1].name


def test_a_call_id_cannot_steer_the_file_name_out_of_the_dir(tmp_path: Path) -> None:
    store = FigureStore(tmp_path / "figures", keep=5)
    path = store.save(PNG, "../../etc/passwd")
    assert path.parent == store.directory and "/" not in path.name and ".." not in path.name


def test_an_existing_loose_dir_is_made_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "figures"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    FigureStore(folder).save(PNG, "toolu_x")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
