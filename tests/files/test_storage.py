"""Async file operations on real files under tmp_path (files/storage.py)."""

import asyncio
import os
import sys
import time

import pytest

from files import storage
from files.paths import PathRefused
from files.storage import (
    DirectoryNotEmpty,
    EntryExists,
    EntryNotFound,
    FileTooLarge,
    InvalidOperation,
    QuotaExceeded,
    Upload,
)


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "alice"
    root.mkdir()
    (root / "docs").mkdir()
    (root / "docs" / "b.txt").write_text("bee")
    (root / "A.txt").write_text("hello")
    (root / "zeta").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    return root


def leftovers(directory) -> list[str]:
    return [name for name in os.listdir(directory) if name.startswith(storage.TEMP_PREFIX)]


async def test_it_lists_folders_first_then_files_by_name(root):
    items, count = await storage.entries_list(str(root), "")
    assert count == 3
    assert [(e.name, e.type) for e in items] == [("docs", "dir"), ("zeta", "dir"), ("A.txt", "file")]
    assert items[2].size == 5 and items[2].mime_type == "text/plain" and items[2].path == "A.txt"


async def test_it_paginates(root):
    items, count = await storage.entries_list(str(root), "", limit=1, offset=1)
    assert count == 3 and [e.name for e in items] == ["zeta"]


async def test_it_lists_a_subfolder_with_relative_paths(root):
    items, _ = await storage.entries_list(str(root), "docs")
    assert [e.path for e in items] == ["docs/b.txt"]


async def test_listing_a_missing_folder_is_not_found(root):
    with pytest.raises(EntryNotFound):
        await storage.entries_list(str(root), "nope")


async def test_listing_through_an_outside_symlink_is_refused(root, tmp_path):
    os.symlink(tmp_path / "outside", root / "docs" / "later")  # created after the tree
    with pytest.raises(PathRefused):
        await storage.entries_list(str(root), "docs/later")
    items, _ = await storage.entries_list(str(root), "docs")
    assert {e.name: e.type for e in items}["later"] == "symlink"


@pytest.mark.parametrize("path", ["../outside", "/etc", "%2e%2e/outside", "docs\\..\\..", "a\x00"])
async def test_every_operation_refuses_traversal(root, path):
    with pytest.raises(PathRefused):
        await storage.entries_list(str(root), path)
    with pytest.raises(PathRefused):
        await storage.dir_make(str(root), path)
    with pytest.raises(PathRefused):
        await storage.entry_delete(str(root), path, recursive=True)
    with pytest.raises(PathRefused):
        await storage.entry_move(str(root), "A.txt", path)
    with pytest.raises(PathRefused):
        await storage.file_open(str(root), path)
    assert (root / "A.txt").exists()


async def test_it_makes_a_folder_and_refuses_a_duplicate(root):
    entry = await storage.dir_make(str(root), "docs/new")
    assert entry.type == "dir" and (root / "docs" / "new").is_dir()
    with pytest.raises(EntryExists):
        await storage.dir_make(str(root), "docs/new")


async def test_it_moves_and_renames(root):
    entry = await storage.entry_move(str(root), "A.txt", "docs/renamed.txt")
    assert entry.path == "docs/renamed.txt"
    assert (root / "docs" / "renamed.txt").read_text() == "hello" and not (root / "A.txt").exists()


async def test_move_needs_overwrite_to_replace(root):
    with pytest.raises(EntryExists):
        await storage.entry_move(str(root), "A.txt", "docs/b.txt")
    await storage.entry_move(str(root), "A.txt", "docs/b.txt", overwrite=True)
    assert (root / "docs" / "b.txt").read_text() == "hello"


async def test_a_folder_cannot_move_into_itself(root):
    with pytest.raises(InvalidOperation):
        await storage.entry_move(str(root), "docs", "docs/inner")


async def test_moving_a_symlink_moves_the_link_not_the_target(root, tmp_path):
    os.symlink(tmp_path / "outside", root / "link")
    await storage.entry_move(str(root), "link", "docs/link")
    assert (root / "docs" / "link").is_symlink()
    assert (tmp_path / "outside" / "secret.txt").exists()


async def test_it_deletes_a_file(root):
    entry = await storage.entry_delete(str(root), "A.txt")
    assert entry.size == 5 and not (root / "A.txt").exists()


async def test_a_non_empty_folder_needs_recursive(root):
    with pytest.raises(DirectoryNotEmpty):
        await storage.entry_delete(str(root), "docs")
    assert (root / "docs" / "b.txt").exists()
    entry = await storage.entry_delete(str(root), "docs", recursive=True)
    assert entry.size == 3 and not (root / "docs").exists()


async def test_recursive_delete_does_not_follow_symlinks_out(root, tmp_path):
    os.symlink(tmp_path / "outside", root / "docs" / "out")
    await storage.entry_delete(str(root), "docs", recursive=True)
    assert (tmp_path / "outside" / "secret.txt").read_text() == "secret"


async def test_the_root_cannot_be_deleted_or_moved(root):
    with pytest.raises(InvalidOperation):
        await storage.entry_delete(str(root), "", recursive=True)
    with pytest.raises(InvalidOperation):
        await storage.entry_move(str(root), "", "x")


async def test_download_streams_ranges(root):
    data = os.urandom(1_000_000)
    (root / "big.bin").write_bytes(data)
    download = await storage.file_open(str(root), "big.bin")
    try:
        assert download.size == len(data) and download.content_type == "application/octet-stream"
        whole = b"".join([c async for c in download.chunks()])
        part = b"".join([c async for c in download.chunks(10, 300_009)])
    finally:
        download.close()
    assert whole == data and part == data[10:300_010]


async def test_download_of_a_folder_is_refused(root):
    with pytest.raises(storage.IsADirectory):
        await storage.file_open(str(root), "docs")


async def test_download_through_an_outside_symlink_is_refused(root, tmp_path):
    os.symlink(tmp_path / "outside" / "secret.txt", root / "s.txt")
    with pytest.raises(PathRefused):
        await storage.file_open(str(root), "s.txt")


async def test_the_etag_changes_when_the_file_changes(root):
    first = await storage.file_open(str(root), "A.txt")
    first.close()
    os.utime(root / "A.txt", ns=(1, 1))
    second = await storage.file_open(str(root), "A.txt")
    second.close()
    assert first.etag != second.etag


async def test_preview_detects_a_text_encoding(root):
    (root / "latin.txt").write_bytes("Grüße aus Köln, schöne Straße. Ça va très bien.\n".encode("cp1252") * 20)
    preview = await storage.file_preview(str(root), "latin.txt")
    assert preview.kind == "text" and "Grüße" in preview.text and not preview.truncated
    # cp1250/cp1252/latin-1 all decode this sample the same; what matters is it is not UTF-8.
    assert preview.encoding.lower().replace("_", "") not in {"utf8", "ascii"}


async def test_preview_truncates_at_64_kib(root):
    (root / "long.txt").write_text("abcdefgh\n" * 20000)
    preview = await storage.file_preview(str(root), "long.txt")
    assert preview.kind == "text" and preview.truncated and len(preview.text) == 64 * 1024


async def test_preview_keeps_utf8_when_the_cut_splits_a_character(root):
    (root / "utf8.txt").write_bytes(b"a" + "é".encode() * 40000)  # byte 65536 is mid-character
    preview = await storage.file_preview(str(root), "utf8.txt")
    assert preview.encoding == "utf-8" and preview.text == "a" + "é" * 32767 and preview.truncated


async def test_preview_of_an_image_is_inline_but_svg_and_html_are_not(root):
    (root / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    (root / "x.svg").write_text("<svg onload=alert(1)></svg>")
    (root / "x.html").write_text("<script>alert(1)</script>")
    assert (await storage.file_preview(str(root), "p.png")).kind == "image"
    svg = await storage.file_preview(str(root), "x.svg")
    html = await storage.file_preview(str(root), "x.html")
    # Shown as escaped text at most, never as an inline document.
    assert svg.kind == "text" and html.kind == "text"
    assert not (await storage.file_open(str(root), "x.svg")).inline_safe


async def test_preview_of_binary_is_metadata_only(root):
    (root / "blob.bin").write_bytes(bytes(range(256)) * 10)
    preview = await storage.file_preview(str(root), "blob.bin")
    assert preview.kind == "none" and preview.entry.size == 2560


async def upload(root, files, **kwargs):
    async with Upload(str(root), kwargs.pop("folder", "docs"), **kwargs) as up:
        for name, chunks in files:
            await up.file_begin(name)
            for chunk in chunks:
                await up.file_write(chunk)
        return await up.commit()


async def test_it_uploads_several_files_atomically(root):
    entries = await upload(root, [("one.bin", [b"a" * 700_000, b"b" * 700_000]), ("two.txt", [b"2"])])
    assert [(e.path, e.size) for e in entries] == [("docs/one.bin", 1_400_000), ("docs/two.txt", 1)]
    assert (root / "docs" / "one.bin").read_bytes() == b"a" * 700_000 + b"b" * 700_000
    assert leftovers(root / "docs") == []


async def test_an_existing_file_needs_overwrite(root):
    with pytest.raises(EntryExists):
        await upload(root, [("b.txt", [b"new"])])
    assert (root / "docs" / "b.txt").read_text() == "bee"
    await upload(root, [("b.txt", [b"new"])], overwrite=True)
    assert (root / "docs" / "b.txt").read_text() == "new"


async def test_a_failed_upload_leaves_nothing(root):
    with pytest.raises(RuntimeError):
        async with Upload(str(root), "docs") as up:
            await up.file_begin("first.txt")
            await up.file_write(b"x" * 100)
            await up.file_begin("second.txt")
            await up.file_write(b"y" * 100)
            raise RuntimeError("client went away")
    assert sorted(os.listdir(root / "docs")) == ["b.txt"]


async def test_a_request_cancelled_while_its_files_are_being_placed_lands_all_or_nothing(root):
    """The commit thread finishes before the cancellation's clean-up runs, so the clean-up never
    races it (nor closes the folder descriptor it is using)."""
    names = [f"f{n:04}.txt" for n in range(2000)]
    committing = asyncio.Event()

    async def run():
        async with Upload(str(root), "docs") as up:
            for name in names:
                await up.file_begin(name)
                await up.file_write(b"x")
            commit = asyncio.ensure_future(up.commit())
            committing.set()
            return await commit

    def first_file_placed() -> None:
        while not (root / "docs" / names[0]).exists():
            time.sleep(0.0002)

    task = asyncio.create_task(run())
    await committing.wait()
    await asyncio.to_thread(first_file_placed)  # the commit's thread is at work now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    landed = sorted(set(os.listdir(root / "docs")) - {"b.txt"})
    assert landed in ([], names)
    assert leftovers(root / "docs") == []


async def test_a_cancelled_upload_leaves_nothing(root):
    started = asyncio.Event()
    never = asyncio.Event()

    async def run():
        async with Upload(str(root), "docs") as up:
            await up.file_begin("c.txt")
            await up.file_write(b"z" * 2_000_000)
            started.set()
            await never.wait()

    task = asyncio.create_task(run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(os.listdir(root / "docs")) == ["b.txt"]


async def test_the_size_limit_is_enforced_while_streaming(root):
    with pytest.raises(FileTooLarge, match="1 KiB"):
        await upload(root, [("big.bin", [b"x" * 1000, b"x" * 100])], max_file_bytes=1024)
    assert sorted(os.listdir(root / "docs")) == ["b.txt"]


async def test_the_quota_counts_existing_files(root):
    # 5 + 3 bytes already used.
    await upload(root, [("ok.bin", [b"x" * 12])], quota_bytes=20)
    with pytest.raises(QuotaExceeded, match="20 bytes"):
        await upload(root, [("no.bin", [b"x"])], quota_bytes=20)
    assert not (root / "docs" / "no.bin").exists()


@pytest.mark.parametrize("name", [".", "..", "a/b", "..\\x", "", "\u200b", "x" * 300])
async def test_bad_upload_names_are_refused(root, name):
    with pytest.raises(PathRefused):
        await upload(root, [(name, [b"x"])])
    assert sorted(os.listdir(root / "docs")) == ["b.txt"]


async def test_upload_into_an_outside_symlink_is_refused(root, tmp_path):
    os.symlink(tmp_path / "outside", root / "docs" / "out")
    with pytest.raises(PathRefused):
        await upload(root, [("x.txt", [b"x"])], folder="docs/out")
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]


async def test_upload_cannot_replace_a_folder(root):
    with pytest.raises(EntryExists):
        await upload(root, [("zeta", [b"x"])], folder="", overwrite=True)
    assert (root / "zeta").is_dir()


async def test_upload_into_a_missing_folder_is_not_found(root):
    with pytest.raises(EntryNotFound):
        await upload(root, [("x.txt", [b"x"])], folder="missing")


async def test_in_flight_uploads_are_hidden_from_listings(root):
    async with Upload(str(root), "docs") as up:
        await up.file_begin("c.txt")
        await up.file_write(b"c")
        items, _ = await storage.entries_list(str(root), "docs")
        assert [e.name for e in items] == ["b.txt"]
        assert len(leftovers(root / "docs")) == 1
        await up.commit()


async def test_usage_counts_regular_files_only(root, tmp_path):
    os.symlink(tmp_path / "outside" / "secret.txt", root / "s")
    assert await storage.usage(str(root)) == 8


async def test_usage_does_not_count_uploads_in_flight(root):
    async with Upload(str(root), "docs") as up:
        await up.file_begin("c.txt")
        await up.file_write(b"c" * 2_000_000)  # flushed to the temporary file
        assert await storage.usage(str(root)) == 8
        await up.commit()
    assert await storage.usage(str(root)) == 2_000_008


# --- the quota holds for uploads running side by side -----------------------------------------


async def test_a_commit_measures_again_and_refuses_what_no_longer_fits(root):
    # 8 bytes used; each upload fits alone (8 + 10 <= 25), both together do not.
    async with Upload(str(root), "docs", quota_bytes=25) as first:
        await first.file_begin("one.bin")
        await first.file_write(b"1" * 10)
        with pytest.raises(QuotaExceeded, match="25 bytes"):
            async with Upload(str(root), "docs", quota_bytes=25) as second:
                await second.file_begin("two.bin")
                await second.file_write(b"2" * 10)  # passes the early check: 8 + 10 <= 25
                await first.commit()
                await second.commit()
    assert sorted(os.listdir(root / "docs")) == ["b.txt", "one.bin"]  # nothing of two.bin, no temp file
    assert await storage.usage(str(root)) == 18


async def test_an_overwrite_needs_room_only_for_the_difference(root):
    (root / "docs" / "big.bin").write_bytes(b"o" * 15)  # 23 of 25 bytes used
    await upload(root, [("big.bin", [b"n" * 17])], overwrite=True, quota_bytes=25)
    assert (root / "docs" / "big.bin").read_bytes() == b"n" * 17 and await storage.usage(str(root)) == 25
    with pytest.raises(QuotaExceeded):
        await upload(root, [("big.bin", [b"m" * 18])], overwrite=True, quota_bytes=25)
    assert (root / "docs" / "big.bin").read_bytes() == b"n" * 17 and leftovers(root / "docs") == []


async def test_the_lock_file_lives_beside_the_area_not_in_it(root, tmp_path):
    await upload(root, [("c.txt", [b"c"])], quota_bytes=100)
    lock = tmp_path / storage.LOCKS_DIR / "alice.lock"
    assert storage.area_lock_path(str(root)) == str(lock) and lock.is_file()
    assert sorted(os.listdir(root)) == ["A.txt", "docs", "zeta"]
    assert await storage.usage(str(root)) == 9


async def test_a_broken_lock_place_refuses_the_upload_cleanly(root, tmp_path):
    (tmp_path / storage.LOCKS_DIR).write_text("not a folder")  # where the lock folder must be
    with pytest.raises(storage.AreaBusy):
        await upload(root, [("c.txt", [b"c"])], quota_bytes=100)
    assert sorted(os.listdir(root / "docs")) == ["b.txt"]


HOLD_LOCK = """
import fcntl, os, sys
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # hold it until the test closes our stdin
"""


async def test_a_lock_held_by_another_process_holds_commits_back(root, monkeypatch):
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_LOCK,
        storage.area_lock_path(str(root)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert await holder.stdout.readline() == b"locked\n"
        monkeypatch.setattr(storage, "COMMIT_LOCK_WAIT", 0.05)
        with pytest.raises(storage.AreaBusy):
            await upload(root, [("c.txt", [b"c"])], quota_bytes=100)
        assert sorted(os.listdir(root / "docs")) == ["b.txt"]
        await upload(root, [("c.txt", [b"c"])])  # no quota, no lock
    finally:
        holder.stdin.close()
        await holder.wait()
    await upload(root, [("d.txt", [b"d"])], quota_bytes=100)
    assert sorted(os.listdir(root / "docs")) == ["b.txt", "c.txt", "d.txt"]


# --- move never replaces without overwrite ------------------------------------------------------


def test_rename_noreplace_is_one_call_that_refuses_an_existing_target(tmp_path):
    assert storage._renameat2 is not None  # glibc has renameat2: moves use it, not the fallback
    (tmp_path / "a").write_text("mine")
    (tmp_path / "b").write_text("theirs")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            storage.rename_noreplace(fd, "a", fd, "b")
        assert (tmp_path / "a").read_text() == "mine" and (tmp_path / "b").read_text() == "theirs"
        assert storage.rename_noreplace(fd, "a", fd, "c") is True
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["b", "c"] and (tmp_path / "c").read_text() == "mine"


async def test_move_without_overwrite_leaves_both_files(root):
    with pytest.raises(EntryExists, match="pass overwrite"):
        await storage.entry_move(str(root), "A.txt", "docs/b.txt")
    assert (root / "A.txt").read_text() == "hello" and (root / "docs" / "b.txt").read_text() == "bee"


async def test_moving_a_folder_into_itself_through_a_link_is_refused(root):
    # Not caught by the path check: renameat2 says EINVAL, the fallback's rename says why.
    os.symlink("docs", root / "alias")
    with pytest.raises(InvalidOperation, match="into itself"):
        await storage.entry_move(str(root), "docs", "alias/inner")
    assert (root / "docs" / "b.txt").read_text() == "bee"


async def test_without_renameat2_move_falls_back_to_check_then_rename(root, monkeypatch):
    # Simulates a C library without renameat2; on this machine the real call is used.
    monkeypatch.setattr(storage, "_renameat2", None)
    with pytest.raises(EntryExists):
        await storage.entry_move(str(root), "A.txt", "docs/b.txt")
    assert (root / "A.txt").read_text() == "hello" and (root / "docs" / "b.txt").read_text() == "bee"
    await storage.entry_move(str(root), "A.txt", "docs/a.txt")
    assert (root / "docs" / "a.txt").read_text() == "hello" and not (root / "A.txt").exists()
