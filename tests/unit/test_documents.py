from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.documents import DocumentError, RawDocument, decode_bytes, load_file
from pipelines.seeds import iter_seed_files, load_seed_files


def test_utf8_with_bom() -> None:
    assert decode_bytes("Iran’s".encode("utf-8-sig"), "text") == "Iran’s"


def test_utf16_with_bom() -> None:
    assert decode_bytes("Iran’s".encode("utf-16"), "text") == "Iran’s"


def test_latin1_text_is_not_lost() -> None:
    assert decode_bytes("café crème".encode("cp1252"), "text") == "café crème"


def test_html_declared_latin1_but_really_utf8() -> None:
    page = '<html><head><meta charset="iso-8859-1"></head><body>Iran’s café</body></html>'
    assert "Iran’s café" in decode_bytes(page.encode("utf-8"), "html")


def test_html_declared_latin1_and_latin1() -> None:
    page = '<html><head><meta charset="iso-8859-1"></head><body>café</body></html>'
    assert "café" in decode_bytes(page.encode("latin-1"), "html")


def test_binary_is_refused_with_a_reason() -> None:
    with pytest.raises(DocumentError, match="binary"):
        decode_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00", "text")


def test_load_file_rejects_unknown_empty_and_oversized(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# hi")
    with pytest.raises(DocumentError, match=r"unsupported file type '\.md'"):
        load_file(tmp_path / "notes.md")
    (tmp_path / "empty.txt").write_text(" \n\n ")
    with pytest.raises(DocumentError, match="empty"):
        load_file(tmp_path / "empty.txt")
    (tmp_path / "big.txt").write_text("x" * 2000)
    with pytest.raises(DocumentError, match="over the 1000-byte limit"):
        load_file(tmp_path / "big.txt", max_bytes=1000)


def test_folders_are_walked_for_seed_types_only(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.html").write_text("<p>x</p>")
    (tmp_path / "one.txt").write_text("Title\n\nBody")
    (tmp_path / "README.md").write_text("not a seed")
    assert [p.name for p in iter_seed_files([tmp_path])] == ["two.html", "one.txt"]
    # A file named explicitly is taken (and then refused with a reason).
    loaded = list(load_seed_files([tmp_path / "README.md"]))
    assert loaded[0].documents == [] and "unsupported" in (loaded[0].error or "")


def test_message_round_trip_keeps_everything() -> None:
    doc = RawDocument(
        kind="html",
        content="<p>x</p>",
        source_kind="page",
        source_ref="ref",
        url="https://example.org/a",
        feed_url="https://example.org/feed",
        received_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    again = RawDocument.from_message(doc.to_message())
    assert again == doc and again.doc_id == doc.doc_id


def test_a_malformed_message_is_a_document_error() -> None:
    with pytest.raises(DocumentError, match="malformed document message"):
        RawDocument.from_message({"kind": "text"})
