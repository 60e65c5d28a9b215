"""Cover art put into an mp4-family file FFmpeg has written (cover_atom), read back
by FFmpeg as an attached picture."""
from __future__ import annotations

import io

import av
from PIL import Image

from media import make_clip, packets
from ncnn_sr import isobmff
from ncnn_sr.cover_atom import add_covers


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, "JPEG")
    return out.getvalue()


def remuxed(src, dst, **options):
    """``src``'s streams copied into ``dst``, written with the muxer's ``options``."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options) as out:
        copies = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        out.metadata.update(inp.metadata)
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = copies[packet.stream.index]
                out.mux(packet)
    return dst


def covers(path) -> list[tuple[str, bytes]]:
    with av.open(str(path)) as c:
        pictures = [s for s in c.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        return [(s.codec_context.name, bytes(next(c.demux(s)))) for s in pictures]


def top_kinds(path) -> list[bytes]:
    data = path.read_bytes()
    return [kind for kind, _ in isobmff.children(data)]


def test_a_moov_before_the_media_data_is_freed_and_written_again_after_it(tmp_path):
    # faststart: the chunk offsets point past the moov, which must not grow in place
    clip = remuxed(make_clip(tmp_path / "plain.mp4", frames=3, width=16, height=16), tmp_path / "fast.mov",
                   movflags="faststart")
    assert top_kinds(clip).index(b"moov") < top_kinds(clip).index(b"mdat")
    before = packets(clip, "video"), packets(clip, "audio")
    assert add_covers(clip, [("mjpeg", jpeg())])
    kinds = top_kinds(clip)
    assert kinds[-1] == b"moov" and kinds.count(b"moov") == 1 and kinds.index(b"free") < kinds.index(b"mdat")
    assert covers(clip) == [("mjpeg", jpeg())]
    assert (packets(clip, "video"), packets(clip, "audio")) == before


def test_a_file_without_a_moov_is_left_as_it_is(tmp_path):
    path = tmp_path / "bare.mp4"
    path.write_bytes(b"\0\0\0\x10ftypisom\0\0\0\0" + b"\0\0\0\x0cmdat1234")
    assert not add_covers(path, [("mjpeg", jpeg())])
    assert path.read_bytes() == b"\0\0\0\x10ftypisom\0\0\0\0" + b"\0\0\0\x0cmdat1234"


def test_the_tags_written_before_stay_beside_the_cover(tmp_path):
    # A .m4v's muxer writes its tags as iTunes metadata, a .mov's as QuickTime's own
    # in udta: the cover joins the one and goes beside the other.
    for suffix in (".m4v", ".mov"):
        clip = remuxed(make_clip(tmp_path / "plain.mp4", frames=3, width=16, height=16, audio=None,
                                 tags={"title": "Sea", "artist": "Me"}), tmp_path / f"tagged{suffix}")
        with av.open(str(clip)) as c:
            tags = dict(c.metadata)
        assert tags["title"] == "Sea"
        assert add_covers(clip, [("mjpeg", jpeg())])
        with av.open(str(clip)) as c:
            assert dict(c.metadata) == tags
        assert covers(clip) == [("mjpeg", jpeg())]
        assert clip.read_bytes().count(b"meta") == 1


def test_each_picture_is_read_back_in_order_with_its_kind(tmp_path):
    png, bmp = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(png, "PNG")
    Image.new("RGB", (4, 4), (0, 255, 0)).save(bmp, "BMP")
    pictures = [("png", png.getvalue()), ("mjpeg", jpeg()), ("bmp", bmp.getvalue())]
    clip = make_clip(tmp_path / "plain.mov", frames=3, width=16, height=16, audio=None)
    assert add_covers(clip, pictures)
    assert covers(clip) == pictures
