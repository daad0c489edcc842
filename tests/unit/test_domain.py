"""VideoMetadata validation against YouTube's limits, JSON round trip, operations."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langflix_scheduler.domain import (
    BucketUsage,
    Privacy,
    TypeUsage,
    UploadStatus,
    VideoMetadata,
    VideoType,
    youtube_tags_length,
)
from langflix_scheduler.errors import InvalidScheduleError


def test_minimal_defaults() -> None:
    meta = VideoMetadata(title="Lesson 1")
    assert meta.description == ""
    assert meta.tags == ()
    assert meta.category_id == "27"
    assert meta.privacy is Privacy.PUBLIC
    assert meta.made_for_kids is False
    assert meta.thumbnail_path is None
    assert meta.playlist_id is None


def test_title_limits() -> None:
    assert VideoMetadata(title="t" * 100).title == "t" * 100
    assert VideoMetadata(title="한" * 100).title == "한" * 100  # characters, not bytes
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title="t" * 101)
    assert info.value.field == "metadata.title"
    assert "101" in str(info.value)
    assert "100" in str(info.value)


@pytest.mark.parametrize("title", ["", "   ", "a <b> c", "x > y", "<"])
def test_title_invalid(title: str) -> None:
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title=title)
    assert info.value.field == "metadata.title"


def test_description_is_limited_in_utf8_bytes() -> None:
    ok = "가" * 1666  # 3 bytes each: 4998 bytes, 1666 characters
    assert VideoMetadata(title="t", description=ok + "ab").description.endswith("ab")
    too_long = "가" * 1667  # 5001 bytes but only 1667 characters
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title="t", description=too_long)
    assert info.value.field == "metadata.description"
    assert "5001 bytes" in str(info.value)
    emoji = "😀" * 1250 + "x"  # 4-byte characters: 5001 bytes
    with pytest.raises(InvalidScheduleError, match="5001 bytes"):
        VideoMetadata(title="t", description=emoji)
    assert VideoMetadata(title="t", description="d" * 5000).description == "d" * 5000
    with pytest.raises(InvalidScheduleError, match=r"metadata\.description"):
        VideoMetadata(title="t", description="d" * 5001)


def test_description_brackets_and_type() -> None:
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title="t", description="see <here>")
    assert info.value.field == "metadata.description"
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title="t", description=None)  # type: ignore[arg-type]
    assert info.value.field == "metadata.description"


def test_tags_total_length() -> None:
    # YouTube counts the comma between the two tags: 249 + 1 + 250 = 500.
    ok = VideoMetadata(title="t", tags=("a" * 249, "b" * 250))
    assert youtube_tags_length(ok.tags) == 500
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title="t", tags=("a" * 250, "b" * 250))
    assert info.value.field == "metadata.tags"
    assert "501" in str(info.value)
    assert "500" in str(info.value)


def test_tags_counted_youtubes_way() -> None:
    assert youtube_tags_length(["Foo-Baz"]) == 7
    assert youtube_tags_length(["Foo Baz"]) == 9
    assert youtube_tags_length(["a", "b c"]) == 1 + 1 + 5
    assert youtube_tags_length([]) == 0
    # 46 x "ab cd efgh": 460 bare characters, 597 as YouTube counts them.
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title="t", tags=("ab cd efgh",) * 46)
    assert info.value.field == "metadata.tags"
    assert "597" in str(info.value)
    assert "500" in str(info.value)
    assert len(VideoMetadata(title="t", tags=("ab cd efgh",) * 38).tags) == 38  # 13 * 38 - 1 = 493
    with pytest.raises(InvalidScheduleError):
        VideoMetadata(title="t", tags=("ab cd efgh",) * 39)  # 506


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"title": "caf\udce9 bad"}, "metadata.title"),
        ({"title": "t", "description": "ok\ud800"}, "metadata.description"),
        ({"title": "t", "tags": ("fine", "caf\udce9")}, "metadata.tags[1]"),
        ({"title": "t", "playlist_id": "PL\udc80"}, "metadata.playlist_id"),
        ({"title": "t", "default_language": "k\udcf0"}, "metadata.default_language"),
        ({"title": "t", "thumbnail_path": "/v/\udce9.png"}, "metadata.thumbnail_path"),
        ({"title": "a\x00b"}, "metadata.title"),
        ({"title": "line\nbreak"}, "metadata.title"),
        ({"title": "tab\there"}, "metadata.title"),
        ({"title": "t", "description": "nul\x00"}, "metadata.description"),
        ({"title": "t", "description": "esc\x1b[0m"}, "metadata.description"),
        ({"title": "t", "description": "del\x7f"}, "metadata.description"),
        ({"title": "t", "tags": ("a\nb",)}, "metadata.tags[0]"),
        ({"title": "t", "tags": ("a\tb",)}, "metadata.tags[0]"),
    ],
)
def test_invalid_unicode_and_control_characters_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(**kwargs)
    assert info.value.field == field
    assert "character" in str(info.value)


def test_description_keeps_line_breaks_and_tabs() -> None:
    text = "line one\r\nline two\n\tindented"
    assert VideoMetadata(title="t", description=text).description == text


def test_from_stored_keeps_rows_booked_under_older_rules() -> None:
    data = VideoMetadata(title="t").to_json() | {"tags": ["ab cd efgh"] * 46, "privacy": "private"}
    with pytest.raises(InvalidScheduleError):
        VideoMetadata.from_json(data)
    meta = VideoMetadata.from_stored(data)
    assert meta.tags == ("ab cd efgh",) * 46
    assert meta.privacy is Privacy.PRIVATE
    assert meta.to_json() == data
    good = VideoMetadata(title="x", tags=("a",))
    assert VideoMetadata.from_stored(good.to_json()) == good


def test_tags_are_stripped_and_blank_dropped() -> None:
    assert VideoMetadata(title="t", tags=(" korean ", "", "  ", "grammar")).tags == (
        "korean",
        "grammar",
    )


@pytest.mark.parametrize("tags", ["korean", ("ok", 3), ("a<b",)])
def test_tags_invalid(tags: Any) -> None:
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title="t", tags=tags)
    assert info.value.field == "metadata.tags"


def test_privacy() -> None:
    assert VideoMetadata(title="t", privacy="unlisted").privacy is Privacy.UNLISTED  # type: ignore[arg-type]
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title="t", privacy="secret")  # type: ignore[arg-type]
    assert info.value.field == "metadata.privacy"
    assert "secret" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"category_id": "music"}, "metadata.category_id"),
        ({"category_id": 27}, "metadata.category_id"),
        ({"made_for_kids": "no"}, "metadata.made_for_kids"),
        ({"default_language": ""}, "metadata.default_language"),
        ({"default_language": "x" * 36}, "metadata.default_language"),
        ({"playlist_id": ""}, "metadata.playlist_id"),
        ({"playlist_id": "P" * 65}, "metadata.playlist_id"),
        ({"thumbnail_path": ""}, "metadata.thumbnail_path"),
        ({"thumbnail_path": "thumb.gif"}, "metadata.thumbnail_path"),
        ({"thumbnail_path": "thumb.jpg.txt"}, "metadata.thumbnail_path"),
    ],
)
def test_other_fields(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata(title="t", **kwargs)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize("name", ["a.jpg", "a.JPEG", "a.png", "A.PNG"])
def test_thumbnail_suffixes_accepted(name: str) -> None:
    assert VideoMetadata(title="t", thumbnail_path=name).thumbnail_path == name


def test_check_files(tmp_path: Path) -> None:
    VideoMetadata(title="t").check_files()  # no thumbnail: nothing to check
    missing = VideoMetadata(title="t", thumbnail_path=str(tmp_path / "none.jpg"))
    with pytest.raises(InvalidScheduleError) as info:
        missing.check_files()
    assert info.value.field == "metadata.thumbnail_path"
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidScheduleError, match="non-empty"):
        VideoMetadata(title="t", thumbnail_path=str(empty)).check_files()
    directory = tmp_path / "dir.jpg"
    directory.mkdir()
    with pytest.raises(InvalidScheduleError, match="non-empty file"):
        VideoMetadata(title="t", thumbnail_path=str(directory)).check_files()
    good = tmp_path / "good.jpg"
    good.write_bytes(b"\xff\xd8\xff" + b"0" * 100)
    VideoMetadata(title="t", thumbnail_path=str(good)).check_files()


def test_operations() -> None:
    assert VideoMetadata(title="t").operations() == ("videos.insert",)
    assert VideoMetadata(title="t", thumbnail_path="a.png").operations() == (
        "videos.insert",
        "thumbnails.set",
    )
    assert VideoMetadata(title="t", playlist_id="PL1").operations() == (
        "videos.insert",
        "playlistItems.insert",
    )
    assert VideoMetadata(title="t", thumbnail_path="a.png", playlist_id="PL1").operations() == (
        "videos.insert",
        "thumbnails.set",
        "playlistItems.insert",
    )


# -- JSON ---------------------------------------------------------------------------------------


def test_json_round_trip_full() -> None:
    meta = VideoMetadata(
        title="한국어 Lesson 3",
        description="Grammar: -(으)면\nline two",
        tags=("korean", "grammar"),
        category_id="22",
        privacy=Privacy.UNLISTED,
        made_for_kids=True,
        default_language="ko",
        thumbnail_path="/videos/t.png",
        playlist_id="PL123",
    )
    data = meta.to_json()
    assert data["privacy"] == "unlisted"
    assert data["tags"] == ["korean", "grammar"]
    assert VideoMetadata.from_json(data) == meta


def test_from_json_unknown_keys_listed() -> None:
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata.from_json({"title": "t", "titel": "x", "colour": "red"})
    assert info.value.field == "metadata"
    assert "colour, titel" in str(info.value)


def test_from_json_requires_title_and_object() -> None:
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata.from_json({"description": "d"})
    assert info.value.field == "metadata.title"
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata.from_json(["title"])  # type: ignore[arg-type]
    assert info.value.field == "metadata"


def test_from_json_tags_forms() -> None:
    assert VideoMetadata.from_json({"title": "t", "tags": "a, b,,c"}).tags == ("a", "b", "c")
    assert VideoMetadata.from_json({"title": "t", "tags": ["x"]}).tags == ("x",)
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata.from_json({"title": "t", "tags": 5})
    assert info.value.field == "metadata.tags"


def test_from_json_validates() -> None:
    with pytest.raises(InvalidScheduleError) as info:
        VideoMetadata.from_json({"title": "t" * 101})
    assert info.value.field == "metadata.title"


_safe_text = st.text(
    alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs", "Cc")),
    max_size=40,
)


@given(
    title=_safe_text.filter(lambda s: s.strip() != ""),
    description=_safe_text,
    tags=st.lists(_safe_text, max_size=5),
    privacy=st.sampled_from(list(Privacy)),
    kids=st.booleans(),
    playlist=st.none() | st.text(alphabet="abcXYZ019_-", min_size=1, max_size=20),
)
def test_json_round_trip_property(
    title: str,
    description: str,
    tags: list[str],
    privacy: Privacy,
    kids: bool,
    playlist: str | None,
) -> None:
    meta = VideoMetadata(
        title=title,
        description=description,
        tags=tuple(tags),
        privacy=privacy,
        made_for_kids=kids,
        playlist_id=playlist,
    )
    assert VideoMetadata.from_json(meta.to_json()) == meta


# -- enums and small value objects ---------------------------------------------------------------


def test_enums() -> None:
    assert [v.value for v in VideoType] == ["final", "short"]
    assert {s for s in UploadStatus if s.is_active} == {
        UploadStatus.SCHEDULED,
        UploadStatus.UPLOADING,
        UploadStatus.COMPLETED,
        UploadStatus.NEEDS_REVIEW,
    }


def test_usage_remaining() -> None:
    assert TypeUsage(video_type=VideoType.FINAL, used=1, limit=2).remaining == 1
    assert TypeUsage(video_type=VideoType.FINAL, used=3, limit=2).remaining == 0
    b = BucketUsage(
        api_project="p",
        quota_date=date(2026, 5, 4),
        bucket="shared",
        reserved=100,
        used=50,
        limit=200,
    )
    assert b.remaining == 50


def test_title_from_filename_is_the_stem_without_brackets_at_most_100_chars() -> None:
    from langflix_scheduler.domain import title_from_filename

    assert title_from_filename("/videos/Episode 1 <final>.mp4") == "Episode 1 final"
    assert title_from_filename(Path("x" * 150 + ".mp4")) == "x" * 100
    assert title_from_filename("/videos/<>.mp4") == "Untitled"


def test_due_at_is_publish_minus_lead_or_the_later_retry_time() -> None:
    from datetime import UTC, datetime, timedelta

    from langflix_scheduler.domain import ScheduledVideo

    publish = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    s = ScheduledVideo(
        id=1,
        channel_id="c",
        api_project="p",
        video_path="v.mp4",
        video_type=VideoType.FINAL,
        metadata=VideoMetadata(title="t"),
        scheduled_publish_time=publish,
        publish_date=publish.date(),
        quota_date=publish.date(),
        status=UploadStatus.SCHEDULED,
        youtube_video_id=None,
        attempts=0,
        last_error=None,
        next_attempt_at=None,
        bytes_uploaded=0,
        bytes_total=None,
        reserved_quota={},
        consumed_quota={},
        lease_owner=None,
        lease_expires_at=None,
        created_at=publish,
        updated_at=publish,
        uploaded_at=None,
    )
    lead = timedelta(hours=1)
    assert s.due_at(lead) == publish - lead
    earlier = dataclasses.replace(s, next_attempt_at=publish - timedelta(hours=3))
    assert earlier.due_at(lead) == publish - lead
    retry = dataclasses.replace(s, next_attempt_at=publish + timedelta(minutes=5))
    assert retry.due_at(lead) == publish + timedelta(minutes=5)
