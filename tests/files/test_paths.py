"""Path validation and symlink-safe resolution (files/paths.py)."""

import os

import pytest

from files import paths
from files.paths import PathRefused, split_path, validate_name


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "a/../../b",
        "a/..",
        "..",
        "./a",
        "/etc/passwd",
        "/",
        "%2e%2e/etc",
        "%2E%2E%2Fetc",
        "a/%2e%2e/%2e%2e/x",
        "%252e%252e/x",  # double-encoded
        "..%2fetc",
        "a\\..\\b",
        "a\\b",
        "a\x00b",
        "a%00b",
        "x/" + "a" * 256,
        "/".join(["d" * 200] * 21),  # > 4095 bytes in total
        "\u200b",
        "a/\u200b\u200b/b",
        " ",
        "\u3164",
        "CON",
        "nul.txt",
        "a/\x07b",
    ],
)
def test_it_refuses_dangerous_paths(path):
    with pytest.raises(PathRefused):
        split_path(path)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("", ()),
        (None, ()),
        ("docs", ("docs",)),
        ("docs/2024/report.pdf", ("docs", "2024", "report.pdf")),
        ("docs//a/", ("docs", "a")),
        ("100%.txt", ("100%.txt",)),
        ("..hidden", ("..hidden",)),
        ("a..b", ("a..b",)),
        ("été/naïve ☃.txt", ("été", "naïve ☃.txt")),
        ("console.log", ("console.log",)),
        (".bashrc", (".bashrc",)),
    ],
)
def test_it_accepts_ordinary_paths(path, parts):
    assert split_path(path) == parts


@pytest.mark.parametrize("name", [".", "..", "a/b", "a\\b", "", "x" * 256, "é" * 128, "\u200b\u200d", "\t"])
def test_it_refuses_bad_names(name):
    with pytest.raises(PathRefused):
        validate_name(name)


def test_it_accepts_a_255_byte_name():
    assert validate_name("x" * 255) == "x" * 255


def test_it_refuses_a_lone_surrogate():
    with pytest.raises(PathRefused):
        validate_name("bad\udcff")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "inside" / "deep").mkdir(parents=True)
    (root / "inside" / "deep" / "file.txt").write_text("hello")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    return root, outside


def test_it_opens_a_file_inside_the_root(tree):
    root, _ = tree
    fd = paths.open_file(str(root), ("inside", "deep", "file.txt"))
    try:
        assert os.read(fd, 10) == b"hello"
    finally:
        os.close(fd)


def test_it_refuses_a_symlinked_directory_pointing_outside(tree):
    root, outside = tree
    os.symlink(outside, root / "escape")
    with pytest.raises(PathRefused):
        paths.open_file(str(root), ("escape", "secret.txt"))
    with pytest.raises(PathRefused), paths.open_dir(str(root), ("escape",)):
        pass


def test_it_refuses_a_symlinked_file_pointing_outside(tree):
    root, outside = tree
    os.symlink(outside / "secret.txt", root / "inside" / "link.txt")
    with pytest.raises(PathRefused):
        paths.open_file(str(root), ("inside", "link.txt"))


def test_it_refuses_a_relative_symlink_climbing_out(tree):
    root, _ = tree
    os.symlink("../../../outside", root / "inside" / "deep" / "up")
    with pytest.raises(PathRefused):
        paths.open_file(str(root), ("inside", "deep", "up", "secret.txt"))


def test_it_follows_a_symlink_that_stays_inside(tree):
    root, _ = tree
    os.symlink("deep", root / "inside" / "alias")
    fd = paths.open_file(str(root), ("inside", "alias", "file.txt"))
    os.close(fd)


def test_it_refuses_a_component_swapped_for_a_symlink_after_the_check(tree, monkeypatch):
    """The TOCTOU window: realpath sees a directory, the walk then meets a symlink."""
    root, outside = tree
    real_resolve = paths._resolved_parts

    def resolve_then_swap(root_arg, parts):
        resolved = real_resolve(root_arg, parts)
        os.rename(root / "inside", root / "moved")
        os.symlink(outside, root / "inside")
        return resolved

    monkeypatch.setattr(paths, "_resolved_parts", resolve_then_swap)
    with pytest.raises(PathRefused):
        paths.open_file(str(root), ("inside", "deep", "file.txt"))


def test_it_refuses_a_final_component_swapped_for_a_symlink(tree, monkeypatch):
    root, outside = tree
    real_resolve = paths._resolved_parts

    def resolve_then_swap(root_arg, parts):
        resolved = real_resolve(root_arg, parts)
        os.unlink(root / "inside" / "deep" / "file.txt")
        os.symlink(outside / "secret.txt", root / "inside" / "deep" / "file.txt")
        return resolved

    monkeypatch.setattr(paths, "_resolved_parts", resolve_then_swap)
    with pytest.raises(PathRefused):
        paths.open_file(str(root), ("inside", "deep", "file.txt"))


def test_it_refuses_a_fifo(tree):
    root, _ = tree
    os.mkfifo(root / "pipe")
    with pytest.raises(PathRefused):
        paths.open_file(str(root), ("pipe",))


def test_open_parent_does_not_follow_the_last_component(tree):
    root, outside = tree
    os.symlink(outside, root / "escape")
    with paths.open_parent(str(root), ("escape",)) as (fd, name):
        assert name == "escape"
        assert os.readlink(name, dir_fd=fd) == str(outside)


def test_open_parent_refuses_the_root(tree):
    root, _ = tree
    with pytest.raises(PathRefused), paths.open_parent(str(root), ()):
        pass
