"""Finding an Instagram export's likes and saved posts: in its zip, its folder or one file,
read within bounds, never extracted, never waiting on a FIFO."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from trickle.connectors.instagram import archive
from trickle.connectors.instagram.archive import ExportError, ExportFile, Kind, read_export

EXPORTS = Path(__file__).resolve().parent / "fixtures" / "export"
LIKED = "your_instagram_activity/likes/liked_posts.json"
SAVED = "your_instagram_activity/saved/saved_posts.json"


def zip_of(path: Path, members: dict[str, bytes], **options: object) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, **options) as z:  # type: ignore[arg-type]
        for name, data in members.items():
            z.writestr(name, data)
    return path


def fixture_bytes(export: str, name: str) -> bytes:
    return (EXPORTS / export / name).read_bytes()


def names(files: list[ExportFile]) -> list[tuple[str, Kind]]:
    return [(f.name, f.kind) for f in files]


# ---------------------------------------------------------------------------
# where the files are


def test_the_unpacked_folder_of_a_current_export_gives_its_likes_then_its_saves() -> None:
    files = read_export(EXPORTS / "current")
    assert names(files) == [(LIKED, Kind.LIKED), (SAVED, Kind.SAVED)]
    assert files[0].data == fixture_bytes("current", LIKED)


def test_an_older_export_keeps_likes_and_saved_at_its_root() -> None:
    assert names(read_export(EXPORTS / "older")) == [
        ("likes/liked_posts.json", Kind.LIKED),
        ("saved/saved_posts.json", Kind.SAVED),
    ]


def test_a_folder_holding_the_export_one_level_down_is_read_too(tmp_path: Path) -> None:
    inner = tmp_path / "instagram-ada-2026-10-14" / "your_instagram_activity" / "likes"
    inner.mkdir(parents=True)
    (inner / "liked_posts.json").write_bytes(fixture_bytes("current", LIKED))
    assert names(read_export(tmp_path)) == [(f"instagram-ada-2026-10-14/{LIKED}", Kind.LIKED)]


def test_the_zip_instagram_sends_is_read_without_extracting_anything(tmp_path: Path) -> None:
    path = zip_of(
        tmp_path / "instagram-ada-2026-10-14-abc.zip",
        {
            LIKED: fixture_bytes("current", LIKED),
            SAVED: fixture_bytes("current", SAVED),
            "media/posts/202610/photo.jpg": b"\xff\xd8 not read",
            "personal_information/personal_information.json": b"{}",
        },
    )
    files = read_export(path)
    assert names(files) == [(LIKED, Kind.LIKED), (SAVED, Kind.SAVED)]
    assert files[1].data == fixture_bytes("current", SAVED)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_zip_made_of_the_unpacked_folder_is_read_one_level_down(tmp_path: Path) -> None:
    path = zip_of(tmp_path / "mine.zip", {f"export/{LIKED}": b"[]", "export/README.txt": b""})
    assert names(read_export(path)) == [(f"export/{LIKED}", Kind.LIKED)]


@pytest.mark.parametrize("name", ["liked_posts.json", "saved_posts.json"])
def test_one_file_of_the_export_is_read_as_what_its_name_says(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"[]")
    (file,) = read_export(path)
    assert (file.name, file.kind, file.data) == (
        name,
        Kind.LIKED if name.startswith("liked") else Kind.SAVED,
        b"[]",
    )


# ---------------------------------------------------------------------------
# what is refused, and how it is said


def test_a_folder_without_likes_or_saves_says_how_to_request_an_export(tmp_path: Path) -> None:
    (tmp_path / "messages").mkdir()
    with pytest.raises(ExportError, match="holds no your_instagram_activity/likes") as caught:
        read_export(tmp_path)
    assert "Download your information" in str(caught.value)


def test_a_json_file_of_another_name_is_refused_saying_what_is_read(tmp_path: Path) -> None:
    path = tmp_path / "likes.json"
    path.write_bytes(b"[]")
    with pytest.raises(ExportError, match=r"liked_posts\.json or saved_posts\.json"):
        read_export(path)


def test_a_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"cannot read .*nope\.zip: No such file"):
        read_export(tmp_path / "nope.zip")


def test_two_exports_in_one_archive_are_refused_rather_than_mixed(tmp_path: Path) -> None:
    path = zip_of(tmp_path / "two.zip", {f"ada/{LIKED}": b"[]", f"bob/{LIKED}": b"[]"})
    with pytest.raises(ExportError, match=r"more than one export \(ada/, bob/\)"):
        read_export(path)


@pytest.mark.parametrize(
    "name", [f"../{LIKED}", f"/{LIKED}", f"C:/{LIKED}", f"a/../../{LIKED}", f"..\\{LIKED}"]
)
def test_a_member_that_could_point_outside_the_archive_is_never_taken(
    tmp_path: Path, name: str
) -> None:
    path = zip_of(tmp_path / "evil.zip", {name: b"[]"})
    with pytest.raises(ExportError, match="holds no"):
        read_export(path)


def test_a_file_larger_than_the_cap_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "liked_posts.json"
    path.write_bytes(b" " * 1001)
    with pytest.raises(ExportError, match="larger than"):
        read_export(path)
    path.write_bytes(b" " * 1000)
    assert len(read_export(path)[0].data) == 1000


def test_a_zip_bomb_inflates_no_further_than_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = zip_of(tmp_path / "bomb.zip", {LIKED: b"[" + b" " * 5_000_000 + b"]"})
    assert path.stat().st_size < 20_000
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 100_000)
    with pytest.raises(ExportError, match="unpacks to more than"):
        read_export(path)


def test_a_member_whose_data_is_corrupt_is_a_clear_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(LIKED, b'{"likes_media_likes": []}')
    data = buffer.getvalue().replace(b'{"likes_media_likes": []}', b'{"likes_media_likes": [}]')
    path = tmp_path / "corrupt.zip"
    path.write_bytes(data)
    with pytest.raises(ExportError, match=f"cannot read .*corrupt.zip: {LIKED}: Bad CRC"):
        read_export(path)


def test_a_truncated_archive_is_no_export(tmp_path: Path) -> None:
    whole = zip_of(tmp_path / "whole.zip", {LIKED: b"[]"}).read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(whole[: len(whole) // 2])  # its central directory is gone
    with pytest.raises(ExportError, match=r"cut\.zip is neither an Instagram export"):
        read_export(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "liked_posts.json"
    os.mkfifo(path)
    with pytest.raises(ExportError, match="not a regular file"):
        read_export(path)
