"""One video's transcode: its packets demuxed, its frames decoded (deinterlaced,
placed in time, damage met told or skipped) and handed to the caller's frames
function, the frames it gives back checked, coded and encoded, or copied from the
pieces a stopped run kept, with the other streams' packets muxed beside them
(copied sound checked by decoding it, re-encoded sound kept on its clock). Used by
``video.upscale_video``; knows nothing of ncnn.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import logging
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

from . import video_pieces, video_streams
from .deinterlace import Deinterlacer, TooSmall
from .errors import FlagNames, InputError, Option, describe, ffmpeg_short_of_memory, with_article
from .resample import resize
from .streams import VideoInput, VideoOutput
from .video_codecs import (BITRATE, JPEG_ENCODERS, RATE_PER_FRAME, SVT_AV1_ONE_THREAD, X265_CUTREE_NARROWEST,
                           _matrix_read, _open_saying_why, _rate_text, _reason, _size_refusal, encoded_size,
                           encoder_time_base, refused_open, short_of_memory_to_open, svt_av1_stalls)
from .video_damage import (REFUSED, _NOT_PLACED, _Reach, _SHIFTED, _avi_listed, _avi_shifted, _cannot_decode,
                           _opened_strict, _refusal, _warn_if_truncated, _warn_of_damage)
from .video_frames import (UnsupportedColour, Upright, as_read, coded, depth, fit, fit_warning, has_alpha, mastering,
                           output_colour, to_rgb)
from .video_input import _boxes_cut_off, _index_damage
from .video_output import (STATED_RATE_FROM_TICK, _FirstFrame, _broken_pipe, _cannot_write, _keep_first, _like, _merged,
                           _say_timecode_dropped, _setup_of, _video_out, quicktime_keys, retimed_tags)
from .video_packets import _Ahead, _ahead_of, _packet_time
from .video_rates import _ConstantRate, _RateGrid, _avi_lead, _source_rate
from .video_timeline import (_MOV_READER, _length, _long_past, _origin, _part_option, _stream_end, _variable_rate,
                             _video_length)
from .video_window import Window

log = logging.getLogger("ncnn_sr")


AVI_REORDER = 8  # frames an AVI's stamps are sorted over: B-frame pyramids move them by 3-4


def _check_frame(image, index: int, first: tuple | None, dst: Path) -> None:
    """An InputError unless ``image``, from the frames function, is an RGB frame of the
    first one's size: a float frame was a bare ValueError from PyAV, and one of another
    size was cropped or padded to the first one's without a word."""
    if not isinstance(image, np.ndarray):
        what = f"is {describe(image)}" if not hasattr(image, "__len__") else f"is {with_article(type(image).__name__)}"
    elif image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype not in (np.uint8, np.uint16):
        what = f"is {image.dtype} of shape {'x'.join(map(str, image.shape))}"
    elif first is not None and image.shape[:2] != first:
        what = f"is {image.dtype} of shape {'x'.join(map(str, image.shape))}, where frame 0 was {first[0]}x{first[1]}"
    else:
        return
    raise InputError(f"cannot write {dst}: the frames function's frame {index} {what}: "
                     "H×W×3 uint8 or uint16 frames, all of one size, are wanted")


def _not_frames(dst, frames) -> InputError:
    return InputError(f"cannot write {dst}: the frames function gave {describe(frames)}, not the frames: "
                      "an iterable of them is wanted")


def _after_kept(source: Iterator, kept: int, frames_fn, dst) -> Iterator:
    """The frames for the output: None for each of the first ``kept`` of ``source``,
    whose packets are copied from kept pieces; then ``frames_fn``'s of the rest."""
    for _ in range(kept):
        next(source)
        yield None
    frames = frames_fn(source)
    if not isinstance(frames, Iterable):
        raise _not_frames(dst, frames)
    yield from frames


def _back_in_time(packet, until: dict[int, Fraction], index: int) -> bool:
    """Whether copied ``packet`` is stamped before the last one copied into output
    stream ``index`` (``until``, which it then moves on), where a muxer refuses it
    ("Invalid argument", as if the output were at fault): a damaged file's. Sound
    packets at the same time are refused too; subtitles may share one."""
    if packet.dts is None or packet.time_base is None:
        return False
    at, last = packet.dts * packet.time_base, until.get(index)
    if last is not None and (at < last or at == last and packet.stream.type == "audio"):
        return True
    until[index] = at
    return False


def _silence_before(out, target, frame, zero: Fraction) -> None:
    """Silence before ``frame``, a sound frame of ``target`` to an Ogg or AVI output,
    as long as it starts after ``zero``, where the picture starts, or after a gap: Ogg
    counts samples from 0 and an AVI plays them one after another, whatever their
    times, and sound that started late, or went on after a pause, came out early by
    that much. A second at a time: a start minutes in is not one frame of that size."""
    ctx = target.stream.codec_context
    start = round(zero * ctx.sample_rate) if target.clock.next is None else target.clock.next
    lead = target.clock.silence_before(frame, start)
    for begin in range(0, lead, ctx.sample_rate):
        silence = video_streams.silent_frame(ctx.format.name, ctx.layout.name, min(ctx.sample_rate, lead - begin),
                                             ctx.sample_rate, start + begin)
        target.clock.stamp(silence)
        out.mux(target.stream.encode(silence))


_ALPHA_DROPPED = "%s has transparency (an alpha channel), which the video made of it leaves out: its frames are " \
                "upscaled opaque"


def _transcode(inp, video_in, out, src, dst, codec, frames_fn, options, progress, window: Window | None,
               flags: FlagNames, work: video_pieces.Work | None = None, opened: list[str] = ()
               ) -> tuple[int, list[tuple[str, bytes]]]:
    """The frames written, and the cover pictures to put into the file once closed.
    ``opened``: what the demuxer logged as an error as ``inp`` was opened (``_open_run_input``).
    With ``work``, the encoded video is kept in its pieces too, and the frames its kept
    pieces hold are copied from them, not upscaled."""
    kept = work.resumed if work is not None else 0
    rate = _source_rate(video_in)
    time_base = Fraction(1, 1) / options.fps if options.fps else encoder_time_base(codec, video_in.time_base)
    grid = None if options.fps else _RateGrid.fitting(video_in, codec, out.format.name)
    if grid is not None:
        time_base = grid.time_base
    ticks = video_in.time_base / time_base  # output ticks in one of the input's, where frames keep their times
    constant = _ConstantRate(options.fps) if options.fps else None
    colour = output_colour(video_in.codec_context, options.pix_fmt, jpeg=codec in JPEG_ENCODERS)
    # FFmpeg decodes every GIF with an alpha plane, opaque or not (and Pillow marks
    # pixels unchanged from the frame before transparent): a GIF frame with clear
    # pixels as shown says so, below.
    gif_alpha = [video_in.codec_context.name == "gif"]  # not yet said
    if has_alpha(video_in) and not gif_alpha[0]:
        log.warning(_ALPHA_DROPPED, src)
    # Frames that keep their times, where a rate of its own does not space them evenly.
    ahead = _ahead_of(src, inp) or _Ahead(inp)  # read first: what the look at its video streams read
    origin = Fraction(0) if window is None else window.start - options.start  # where the file starts
    # Read ahead for it from a pipe only where an mp4 needs it: a live source waits.
    judged = out.format.name in video_streams.MOV_FAMILY or (
        codec in STATED_RATE_FROM_TICK and not (isinstance(src, VideoInput) and not src.seekable()))
    uneven = constant is None and judged and _variable_rate(src, video_in, ahead, window, origin)
    variable = uneven and out.format.name in video_streams.MOV_FAMILY
    # The frames are written at the rate the stream is opened with: --fps's, or the input's own.
    steady = constant is not None or (
        judged and not uneven and options.rate_factor(video_in.codec_context.field_order) == 1)
    video_out = _video_out(out, video_in, codec, options, time_base, colour, variable, steady)
    # A timecode on the file itself counts frames as the video's does.
    out.metadata.update(retimed_tags(video_streams.tags_to_keep(inp.metadata), rate, options.fps or rate,
                                     options.start))
    _say_timecode_dropped(out, video_out, dst)
    keyed = quicktime_keys(out)
    if keyed and isinstance(dst, VideoOutput):  # they go into a file once it is written
        log.warning("%s written into a pipe cannot hold QuickTime keys: dropping %s (a .mkv output keeps them)",
                    dst.suffix, ", ".join(keyed))
    one_way = isinstance(dst, VideoOutput) and not dst.seekable()  # a pipe, not stdout to a file
    # An AVI plays each stream from its first packet, whatever its time: its sound
    # starts at 0, so its picture counts from where the input starts too (an MPEG
    # program stream's near 0.5 s), else it lags the sound by that much. (Not back
    # from before 0: an mp4's sound may start there, with its encoder's priming.)
    zero = max(_origin(inp), Fraction(0)) if window is None and out.format.name == "avi" else Fraction(0)
    side, covers, boxed = video_streams.carry_over(inp, video_in, out, dst, window, one_way,
                                                   reopen=not isinstance(src, VideoInput) or src.seekable(),
                                                   sound_from=(window.start if window is not None else zero),
                                                   held=ahead.first(), ahead=ahead.read)
    # Copied sound an edit list cuts, left out where the output would play it (a part's
    # is cut at its start).
    cut = (video_streams.EditCut() if window is None and out.format.name in video_streams.OFFSET_DROPPING_MUXERS
           else None)
    # Whether sound goes along, which an AVI plays from ``zero``: its picture is placed against it.
    sounded = any(target.stream.type == "audio" for target in side.values())
    # Filled by the decoding thread, read here: appends and pops of a deque are atomic.
    stamps: collections.deque = collections.deque()
    side_packets: collections.deque = collections.deque()
    upright = Upright(src, video_in.metadata)
    reach = _Reach()
    first: list[_FirstFrame] = []  # set before the first frame is handed on
    # Where the first frame handed on is shown, in seconds on the output's timeline.
    first_at: list[float] = []
    sar = video_in.sample_aspect_ratio  # the container's, else the codec's, as players take it
    # Frames go through the upscaler in 16 bits when the output holds more than 8.
    deep = depth(options.pix_fmt) > 8

    # An AVI stores no presentation times: its nth frame shows n frames from its
    # start, as its nth packet is stored. FFmpeg hands out the frames in the right
    # order but stamped with its guesses, in decoding order (1, 4, 3, 5, 2, ... with
    # B-frames, which the encoder refused), and H.264's and B-frame MPEG-4's a frame
    # late, behind the sound. The stamps' set is right but for that lateness, which
    # its first keyframe shows (stamped after its place): so each frame takes the
    # earliest of those of the next few frames, less that. Not simply the packets'
    # places in turn: frames the decoder leaves out (before the first keyframe of a
    # cut file) would pull every later frame early.
    reorder = AVI_REORDER if inp.format.name == "avi" else 0
    late = [None]  # the guessed stamps' lateness, in ticks, once the first keyframe is read
    ended: set[int] = set()  # the streams past the part asked for
    damaged = [0]  # video packets the decoder refused, skipped with --skip-damaged
    refusal: list[Exception | None] = [None]  # the error of a video packet no more video has followed yet
    # By stream: the error of a sound packet no more of it has followed yet, and where
    # it starts (s from the input's start).
    cut_sound: dict[int, tuple[Exception, float | None]] = {}
    unchecked: set[int] = set()  # copied sound streams their decoder cannot take: copied unlooked at
    # By stream: where a packet flagged corrupt, or a frame its decoder concealed
    # damage in, came (s), and what told, until more of the stream comes.
    suspect: dict[int, tuple[float, str]] = {}
    kept_damaged: list[float] = []  # where such damage was kept, with --skip-damaged
    copied_until: dict[int, Fraction] = {}  # by output stream: the time of the last packet copied into it
    backward: collections.Counter = collections.Counter()  # by kind: copied packets stamped before the one before
    skipped_cues = [0]  # subtitle cues the decoder refused, skipped with --skip-damaged
    skipped_sound = [0]  # sound packets a decoder refused, skipped with --skip-damaged (re-encoded sound's)
    video_read = [0]  # the video packets with data the demuxer handed out
    unread = [0, 0]  # of an AVI's video chunks its index lists, those not read and all, with --skip-damaged
    shifted: list[float | None] = [None]  # where an AVI's data stops being where its index lists it
    video_end: list[Fraction | None] = [None]  # where the video packets read so far end (the input's time)
    stops_short: list[tuple[float, float] | None] = [None]  # an mp4's video read to (s), of what its index gives
    fed: set[int] = set()  # the output streams that got a packet
    # Whether video packets come out of the order their frames are shown in (B-frames),
    # and the latest time among them so far.
    reordered, top = [False], [None]

    def decoded() -> Iterator[np.ndarray]:
        count = 0
        stamped = None  # the time (s) and count of the last frame decoded with a time of its own
        # Frames handed on, which the side packets are muxed beside: not those decoded,
        # as film leaves four of five, and a part none before its start.
        handed = 0
        seen = 0  # frames decoded (and deinterlaced) in the part, handed on or not
        held: collections.deque = collections.deque()
        slots: list[int] = []
        resized = False  # whether a frame of another size than the first has come
        fields = Deinterlacer(options.deinterlace, options.doubles_rate(video_in.codec_context.field_order), rate)

        def video_damaged() -> None:
            e, refusal[0] = refusal[0], None
            if not options.skip_damaged:
                try:
                    raise e
                except av.error.FFmpegError as refused:
                    raise _cannot_decode(src, refused, flags, refused=True) from None
                finally:
                    del e  # else held by this frame, in its traceback: a cycle, with the decoding's frames
            damaged[0] += 1

        def timed(frame) -> tuple:
            """The frame's (pts, seconds, duration) on the output's timeline."""
            pts, seconds = frame.pts, float(frame.pts * frame.time_base)
            if window is not None:  # the part starts at 0
                pts, seconds = pts - window.ticks(frame.time_base), float(frame.pts * frame.time_base - window.start)
            elif zero:  # an AVI's frames go at a constant rate: only their times count
                seconds = float(frame.pts * frame.time_base - zero)
            # Without a duration a frame lasts as long as the frame rate says; a field's half.
            duration = (float(frame.duration * frame.time_base) if frame.duration
                        else float(1 / rate) / (2 if fields.fields and fields.started else 1))
            return pts, seconds, duration

        def looked_at(frame) -> np.ndarray | None:
            """What every frame is checked for, shown or not; its picture where that
            was needed for it."""
            if gif_alpha[0] and len(frame.format.components) == 4 and \
                    (frame.to_ndarray(format="rgba")[:, :, 3] < 255).any():
                gif_alpha[0] = False
                log.warning(_ALPHA_DROPPED, src)
            if first:
                return None
            image = upright(to_rgb(frame, deep), frame)
            first.append(_FirstFrame(mastering(frame), (image.shape[1], image.shape[0]), upright.shown_aspect(sar)))
            return image

        def hand_on(frame, stamp: tuple, image: np.ndarray | None, number: int, taken: list | None) -> np.ndarray:
            """The picture of ``frame``, frame ``number`` of those seen, for the output's
            slots ``taken`` (None: at its own time)."""
            nonlocal handed, resized
            handed += 1
            if not first_at:
                first_at.append(stamp[1])
            stamps.append((stamp[0], taken, frame.duration * frame.time_base if frame.duration else None))
            if handed <= kept:
                return None  # its packets are kept: not upscaled again
            image = upright(to_rgb(frame, deep), frame) if image is None else image
            if (image.shape[1], image.shape[0]) != first[0].shown:
                # One video stream holds frames of one size (a recording whose source
                # switched, an adaptive stream saved, two streams joined do not).
                width, height = first[0].shown
                if not resized:
                    resized = True
                    log.warning("%s: its frames change size midway, from %dx%d to %dx%d at frame %d (%.2f s): "
                                "scaling them to %dx%d, the first frame's size", src, width, height, image.shape[1],
                                image.shape[0], number, stamp[1], width, height)
                image = resize(image, height, width)
            return image

        def shown(done: list) -> Iterator[np.ndarray]:
            """The pictures of the frames ``done`` that the output shows. At a constant
            rate a frame is held until the next one's time says which slots it fills:
            one that fills none (at a rate below the input's) is never upscaled."""
            nonlocal seen
            for frame in done:
                stamp, image = timed(frame), looked_at(frame)
                seen += 1
                if constant is None:
                    yield hand_on(frame, stamp, image, seen - 1, None)
                    continue
                before = constant.pending
                taken = [k for _, k in constant.push((frame, stamp, image, seen - 1), stamp[1], stamp[2])]
                if taken:
                    yield hand_on(*before, taken)

        def last_shown() -> Iterator[np.ndarray]:
            """The picture of the last frame held at a constant rate, where it fills a slot."""
            if constant is not None and constant.pending is not None:
                last = constant.pending
                # A part ends where it was asked to, however long its last frame is shown.
                part = window.end - window.start if window is not None and window.end is not None else None
                taken = [k for _, k in constant.finish(last_end(constant.end), part, video_in.index in ended)]
                if taken:
                    yield hand_on(*last, taken)

        def last_end(stated: float) -> float:
            """Where the last frame handed on stops being shown, on the output's
            timeline, ``stated`` its own time plus duration. A frame's duration in an
            mp4 is the time to the next one decoded, not shown: with B-frames the
            last one shown got another frame's gap (0.1 s for 0.04, a slot more at
            20 fps), where the track's end tells."""
            if reordered[0] and (stream_end := _stream_end(video_in)) is not None:
                return float(stream_end - (window.start if window is not None else zero))
            return stated

        def whole(frame, pts: int) -> list:
            frame.pts = pts
            # A stamp stands for any time within half a tick of it: an mkv's 583 ms
            # frame is the one at 7/12 s, which a part ending there leaves out.
            seconds = pts * frame.time_base + frame.time_base / 2
            # With a frame per field, a frame whose second field is in the part goes in,
            # and its first field is left out below.
            second_field = frame.duration * frame.time_base / 2 if fields.fields and frame.duration else 0
            if window is not None and not window.holds(seconds + second_field):
                if window.past(seconds):
                    ended.add(video_in.index)
                return []
            started = fields.started
            done = fields.push(frame)
            if window is not None and fields.fields:
                done = [f for f in done if window.holds(f.pts * f.time_base + f.time_base / 2)]
            if fields.started and not started:
                if options.deinterlace == "film":
                    log.info("%s: undoing 3:2 pulldown (fieldmatch, decimate): %s fps from %s", src,
                             _rate_text(rate * options.rate_factor(0)), _rate_text(rate))
                else:
                    log.info("%s is interlaced: deinterlacing it (bwdif%s, %s keeps the fields)",
                             src, ", a frame per field" if fields.fields else "",
                             flags.named("--deinterlace off", "deinterlace='off'"))
            return done

        def damage_met() -> None:
            """The demuxer logged damage before the packet to come, if any: the run
            stops there, or with --skip-damaged reads on as far as FFmpeg can."""
            at, said = reach.since_start(inp), ahead.errors[0]
            if not options.skip_damaged:
                raise InputError(f"{src}: cannot read past {at:.2f} s: FFmpeg's demuxer says: {said} (a damaged file? ",
                                 Option(flag=flags("--skip-damaged"), argument="skip_damaged=True", everywhere=True),
                                 " upscales what can be read)")
            reach.damage = (at, said, reach.end)

        def flawed(index: int, seconds: Fraction | None, what: str) -> None:
            """Stream ``index`` is damaged at ``seconds`` (the input's time), as
            ``what`` says: damage once more of it comes, as for a refused packet."""
            if index not in suspect and seconds is not None:
                suspect[index] = (float(seconds - reach.origin(inp)), what)

        def concealed(index: int) -> None:
            at, what = suspect.pop(index)
            if not options.skip_damaged:
                kind = "video" if index == video_in.index else inp.streams[index].type
                raise InputError(f"{src}: cannot decode: its {kind} is damaged at {at:.2f} s ({what}) "
                                 "(a damaged file? ",
                                 Option(flag=flags("--skip-damaged"), argument="skip_damaged=True", everywhere=True),
                                 " upscales the rest)")
            kept_damaged.append(at)

        try:
            if inp.format.name == "avi" and window is None:
                shifted[0] = _avi_shifted(src, video_in.index, rate)
            if shifted[0] is not None:
                # Told before any frame is upscaled: FFmpeg, not finding the index, reads
                # on past the gap (bytes cut out midway), what it cannot make out left out
                # unsaid (a frame, or the sound's bytes), and read to the end it says nothing.
                if not options.skip_damaged:
                    raise InputError(f"{src}: cannot read past {shifted[0]:.2f} s: {_SHIFTED} (a damaged file? ",
                                     Option(flag=flags("--skip-damaged"), argument="skip_damaged=True",
                                            everywhere=True), " upscales what can be read)")
            # Every stream, those left out too: how far they all go tells a cut-off file.
            for packet in ahead.packets():
                if ahead.errors and reach.damage is None:
                    damage_met()
                reach.add(packet)
                if packet.size and (packet.stream.index == video_in.index or packet.stream.index in side):
                    if packet.stream.index in suspect:  # more came: it was damaged, not cut off
                        concealed(packet.stream.index)
                    if packet.is_corrupt:  # an MPEG-TS's continuity broken: part of it is lost
                        flawed(packet.stream.index, _packet_time(packet), "its demuxer found a packet corrupt")
                if packet.stream.index == video_in.index and packet.size:
                    video_read[0] += 1
                    if (begins := _packet_time(packet)) is not None:
                        ends = begins + (packet.duration or 0) * packet.time_base
                        video_end[0] = ends if video_end[0] is None else max(video_end[0], ends)
                if packet.stream.index != video_in.index:
                    if packet.dts is not None and packet.stream.index in side:
                        side_packets.append((handed, packet))
                        if window is not None and window.past(_packet_time(packet)):
                            ended.add(packet.stream.index)
                elif video_in.index not in ended:
                    if packet.pts is not None:
                        reordered[0] = reordered[0] or (top[0] is not None and packet.pts < top[0])
                        top[0] = packet.pts if top[0] is None else max(top[0], packet.pts)
                    if refusal[0] is not None and packet.size:  # more came: that packet was damaged, not cut off
                        video_damaged()
                    try:
                        frames = packet.decode()
                    except REFUSED as e:
                        # The last packet of a file cut off is cut short too: damaged
                        # only if more of the video comes.
                        refusal[0] = e
                        continue
                    if reorder and late[0] is None and packet.is_keyframe and None not in (packet.pts, packet.dts):
                        late[0] = packet.pts - packet.dts
                    for frame in frames:
                        if frame.pts is None:
                            # A frame after the last with a time (small frames share an MPEG
                            # program stream's packet, which states its first frame's
                            # only), as ffmpeg places it; with no times at all, counted
                            # at the stream's rate.
                            after = count / rate if stamped is None else stamped[0] + (count - stamped[1]) / rate
                            frame.pts, frame.time_base = round(after / video_in.time_base), video_in.time_base
                        else:
                            stamped = (frame.pts * frame.time_base, count)
                        if frame.is_corrupt:  # H.264's "error while decoding MB", filled in from around it
                            flawed(video_in.index, frame.pts * frame.time_base, "its decoder concealed the damage")
                        count += 1
                        held.append(frame)
                        stamp = frame.pts
                        if reorder and frame.dts is not None and not video_in.codec_context.has_b_frames:
                            # Without B-frames a frame comes out of its own packet, whose
                            # place in the AVI is its time: FFmpeg's guess at H.264's is
                            # the next packet's, which after a dropped frame's empty place
                            # is that place. (The lateness comes off below.)
                            stamp = frame.dts + (late[0] or 0)
                        heapq.heappush(slots, stamp)
                        if len(held) > reorder:
                            yield from shown(whole(held.popleft(), heapq.heappop(slots) - (late[0] or 0)))
                if window is not None and video_in.index in ended and (
                        ended >= {video_in.index, *side} or _long_past(window, packet)):
                    # Every stream is past the part asked for; or one that has ended for
                    # good (the last cue before the part's end) is taken to be, once
                    # the file is that far past it.
                    break
            else:
                reach.complete = True
            if not ahead.errors and opened and reach.complete and (total := _length(inp, reach.origin(inp))) \
                    and reach.since_start(inp) + 2 / float(rate) < float(total):
                # Logged as FFmpeg read ahead to open it: the packets it then held came,
                # and nothing after them. (Read on to the end, what was lost is not known.)
                ahead.errors.extend(opened)
            if ahead.errors and reach.damage is None:
                damage_met()
            if inp.format.name == "avi" and reach.complete and window is None and shifted[0] is None and \
                    (listed := _avi_listed(src, video_in.index)) and listed > video_read[0]:
                unread[:] = listed - video_read[0], listed
                if not options.skip_damaged:
                    raise InputError(f"{src}: cannot read {unread[0]} of the {listed} video frames its index lists "
                                     "(a damaged file? ", Option(flag=flags("--skip-damaged"),
                                                                 argument="skip_damaged=True", everywhere=True),
                                     " upscales the rest)")
            if inp.format.name == _MOV_READER and reach.complete and window is None and reach.damage is None \
                    and video_end[0] is not None and (stated := _video_length(inp, video_in)) is not None \
                    and float(video_end[0] - reach.origin(inp)) + 2 / float(rate) < float(stated) \
                    and not _boxes_cut_off(src):
                # Its other streams read to the end, nothing said, its video stopped short:
                # a place its index gives (stco) past the file's end, damaged (10 frames of
                # 24 were written, exit 0). A file cut off ends in FFmpeg's "partial file".
                stops_short[0] = (float(video_end[0] - reach.origin(inp)), float(stated))
                if not options.skip_damaged:
                    raise InputError(f"{src}: cannot read its video past {stops_short[0][0]:.2f} s of the "
                                     f"{stops_short[0][1]:.2f} s its index (moov) gives: {_NOT_PLACED} (a damaged "
                                     "file? ", Option(flag=flags("--skip-damaged"), argument="skip_damaged=True",
                                                      everywhere=True), " upscales what can be read)")
            # No video came after it (the reading stops only once video past the part has).
            if refusal[0] is not None:
                reach.cut_short = "video"
            while held:
                yield from shown(whole(held.popleft(), heapq.heappop(slots) - (late[0] or 0)))
            yield from shown(fields.finish())
            yield from last_shown()
            if reach.damage is not None:
                _warn_of_damage(inp, src, reach, flags)
            if stops_short[0] is not None:
                log.warning("%s: its video cannot be read past %.2f s of the %.2f s its index (moov) gives (%s): "
                            "upscaled up to there (%s)", src, *stops_short[0], _NOT_PLACED,
                            flags.named("--skip-damaged", "skip_damaged"))
            if shifted[0] is not None:
                log.warning("%s: damaged at %.2f s (%s): what could not be read there is missing (%s)", src,
                            shifted[0], _SHIFTED, flags.named("--skip-damaged", "skip_damaged"))
            if unread[0]:
                log.warning("%s: %d of the %d video frames its index lists could not be read (%s)", src, *unread,
                            flags.named("--skip-damaged", "skip_damaged"))
            if kept_damaged:
                places = len(kept_damaged)
                log.warning("%s: damaged in %d place%s, at %s s, kept as FFmpeg makes it out (%s): frames there are "
                            "missing or garbled", src, places, "s" * (places > 1),
                            ", ".join(f"{at:.2f}" for at in sorted(kept_damaged)[:5]) + ", ..." * (places > 5),
                            flags.named("--skip-damaged", "skip_damaged"))
            if damaged[0]:
                log.warning("%s: %d damaged video packet%s skipped (%s): frames are missing there, up to the next "
                            "keyframe, and players show the one before", src, damaged[0], "s" * (damaged[0] > 1),
                            flags.named("--skip-damaged", "skip_damaged"))
        except (av.error.FFmpegError, UnsupportedColour) as e:
            raise _cannot_decode(src, e, flags) from None
        except TooSmall as e:
            raise InputError(f"{src}: {e}: ", Option(flag=flags("--deinterlace off"), argument="deinterlace='off'",
                                                      everywhere=True), " upscales them as they are") from None

    def mux_side(up_to: int | None) -> None:
        if covers:  # first: a muxer waits for a packet of each stream before it writes any
            out.mux(covers)
            covers.clear()
        while side_packets and (up_to is None or side_packets[0][0] <= up_to):
            _, packet = side_packets.popleft()
            at = since_start(packet)  # where it starts in the input, for its damage
            if window is not None and (packet := window.moved(packet)) is None:
                continue
            target = side[packet.stream.index]
            if target.text:
                try:
                    cue = packet.stream.codec_context.decode2(packet)
                except REFUSED as e:
                    if not options.skip_damaged:
                        raise _cannot_decode(src, e, flags, refused=True) from None
                    skipped_cues[0] += 1
                    cue = None
                except av.error.FFmpegError as e:
                    raise _cannot_decode(src, e, flags) from None
                if cue is not None and len(cue):  # None: a packet that clears the screen
                    out.mux(video_streams.encoded_cue(cue, packet, target.stream))
                    fed.add(target.stream.index)
            elif target.resampler is None:
                kept = [packet] if cut is None or packet.stream.type != "audio" else cut.passed(packet)
                for copied in kept:
                    if _back_in_time(copied, copied_until, target.stream.index):
                        backward[copied.stream.type] += 1  # damaged: left out
                        continue
                    samples = None
                    if copied.stream.type == "audio" and copied.stream.index not in unchecked:
                        # A part's packet is moved to its timeline: ``at`` is its time in the
                        # input. (Without a part, an edit list's held packet may come too.)
                        samples = sound_checked(copied, at if window is not None else since_start(copied))
                        if samples is None and options.skip_damaged:
                            continue  # refused: a gap, as in sound re-encoded
                    for filler in target.gaps.fill(copied) if target.gaps is not None else ():
                        filler.stream = target.stream
                        out.mux(filler)
                    if target.timed:
                        copied = video_streams.timed_by_samples(copied, samples)
                    copied.stream = target.stream
                    out.mux(copied)
                    fed.add(target.stream.index)
            else:
                index = packet.stream.index
                if index in cut_sound:  # more of it came: that packet was damaged, not cut off
                    damaged_sound(*cut_sound.pop(index))
                if not packet.stream.codec_context.is_open:
                    _opened_strict(packet.stream.codec_context)  # else opened as it decodes, and fails there
                try:
                    sound = packet.decode()
                except REFUSED as e:
                    # The last packet of a file cut off is cut short too: damaged only if
                    # more of the stream comes. Until then, a gap, which the clock keeps.
                    cut_sound[index] = (e, at)
                    sound = []
                except av.error.FFmpegError as e:
                    raise _cannot_decode(src, e, flags) from None
                for frame in sound:
                    target = encode_sound(index, target, frame)

    def since_start(packet) -> float | None:
        seconds = _packet_time(packet)
        return None if seconds is None else float(seconds - reach.origin(inp))

    def damaged_sound(e: Exception, at: float | None) -> None:
        if not options.skip_damaged:
            where = f" at {at:.2f} s" if at is not None else ""
            raise InputError(f"{src}: cannot decode: its sound is damaged{where} ({_refusal(e)}) (a damaged file? ",
                             Option(flag=flags("--skip-damaged"), argument="skip_damaged=True", everywhere=True),
                             " upscales the rest)")
        skipped_sound[0] += 1

    def sound_checked(packet, at: float | None) -> int | None:
        """The samples copied sound ``packet`` decodes to; None where its decoder
        refuses it, damage once more of its stream comes (as in sound re-encoded).
        Copied sound is decoded for this alone: its garbled or lost packets went into
        the output unsaid. Cheap beside the picture's work: 4 to 30 ms for 10 s of
        AAC, Opus, MP3, AC-3 or FLAC, where a 32x24 picture's took 4.6 s."""
        index = packet.stream.index
        if index in cut_sound:  # more of it came: that packet was damaged, not cut off
            damaged_sound(*cut_sound.pop(index))
        decoder = packet.stream.codec_context
        if decoder is None or not decoder.is_open and not _opened_strict(decoder):
            unchecked.add(index)  # no decoder (a codec FFmpeg does not know): copied as before
            return 0
        try:
            return sum(frame.samples for frame in packet.decode())
        except REFUSED as e:
            cut_sound[index] = (e, at)
            return None
        except av.error.FFmpegError:
            # Not the packet's damage (a feature FFmpeg's decoder lacks, say): copied as
            # before, which needed no decoder.
            unchecked.add(index)
            return 0

    def encode_sound(index: int, target: video_streams.SideOutput, frame) -> video_streams.SideOutput:
        """Re-encode one decoded sound frame of input stream ``index``, or with None
        flush the resampler and encoder; the stream's output as it now is."""
        try:
            converted_frames = target.resampler.resample(frame)
        except ValueError as e:  # PyAV's resampler takes one input format per stream
            if frame is None:
                raise
            # A stream joined from two recordings (48 kHz stereo, then 44.1 kHz mono)
            # changes format midway: a new resampler takes it to the encoder's, the old
            # one's last samples first. Else the run failed there, after upscaling up to it.
            ctx = target.stream.codec_context
            try:
                held = target.resampler.resample(None)
                fresh = av.AudioResampler(format=ctx.format, layout=ctx.layout, rate=ctx.sample_rate)
                converted_frames = held + fresh.resample(frame)
            except ValueError:
                raise InputError(f"{src}: its sound changes format midway, which re-encoding cannot follow "
                                 f"({e}); a .mkv output copies it as it is") from None
            log.info("%s: sound stream %d changes to %s, %d Hz midway, at %.2f s: resampled to %s, %d Hz as before",
                     src, index, frame.layout.name, frame.sample_rate, float(frame.time or 0), ctx.layout.name,
                     ctx.sample_rate)
            target = side[index] = replace(target, resampler=fresh)
        for converted in converted_frames:
            if out.format.name in video_streams.OFFSET_DROPPING_MUXERS:
                _silence_before(out, target, converted, zero)
            target.clock.stamp(converted)
            encoded = target.stream.encode(converted)
            out.mux(encoded)
            if encoded:
                fed.add(target.stream.index)
        if frame is None:
            encoded = target.stream.encode()
            if out.format.name == "avi":
                # FLAC's last packet is empty, its header's update, a few samples on from
                # the one before: an AVI times FLAC by whole blocks, where both fell in
                # one, which its muxer refused. An AVI's header is not written again.
                encoded = [packet for packet in encoded if packet.size]
            out.mux(encoded)
            if encoded:
                fed.add(target.stream.index)
        return target

    def refused(e: Exception, said: str | tuple | None = None, frames: tuple[int, int] | None = None) -> InputError:
        return refused_open(dst, codec, _reason(e), said, frames)

    coder = [video_out.codec_context]  # the encoder of the piece in work
    setup: list[dict] = []  # how it was set up, for the next piece's
    copying: list = [iter(())]  # the packets of the kept piece being copied

    def mux_video(packets) -> None:
        for packet in packets:
            packet.stream = video_out
            if work is not None:
                work.add(packet)
        out.mux(packets)

    def encode(frame, pts: int | None = None) -> None:
        """Encode one frame, or with None flush the encoder."""
        if frame is not None:
            frame.pts, frame.time_base = pts, time_base
        try:
            packets = coder[0].encode(frame)
        except av.error.FFmpegError as e:
            if (lacking := ffmpeg_short_of_memory(f"{codec} cannot encode", e)) is not None:
                raise lacking from e
            # VC-2 refuses a frame its share of the rate cannot code, and says nothing.
            short = codec in RATE_PER_FRAME and options.bitrate and isinstance(e, av.error.ArgumentError)
            raise refused(e, ("too few bits for each frame's slices: give a higher ", BITRATE) if short else None) \
                from None
        for packet in packets:
            length = lengths.pop(packet.pts, None)
            if length is not None and not reordered[0]:
                packet.duration = length
        mux_video(packets)

    def copy(count: int | None) -> None:
        """Mux the next ``count`` packets of the kept piece being copied (None: all
        that are left), in place of encoding frames again."""
        for packet in itertools.islice(copying[0], count):
            packet.stream = video_out
            out.mux(packet)

    def next_piece(at: int, seconds: float) -> None:
        """Frame ``at`` starts a piece: the one before is finished, copied or
        encoded, and a new encoder, set up alike, takes the frames from here."""
        nonlocal work
        if at < kept:
            copy(None)
            copying[0] = work.packets(work.kept[at // work.every], time_base)
            return
        if at == kept:
            copy(None)  # the stream's own encoder, never fed, goes on from here
            work.start(at)
            return
        if work.given_up:  # no pieces kept: the encoder goes on as in one piece
            work = None
            return
        fresh = _like(codec, setup[0])
        try:
            _open_saying_why(fresh)
        except av.error.FFmpegError:
            fresh = None  # a hardware encoder's sessions all taken, say: one piece from here
        if fresh is None or fresh.extradata != coder[0].extradata:
            log.info("%s: %s made other headers when started again: the rest of the video is written in one "
                     "piece, and a stopped run cannot go on from it", dst, codec)
            work.stop()
            work = None
            return
        encode(None)
        work.close_piece(at, seconds)
        coder[0] = fresh
        work.start(at)

    # A variable rate's frame durations, by their times, for their packets: an mp4 or
    # .mov ends its track with the last one's, where the muxer's guess is a frame at
    # the average rate (1.14 s of video came out 1.20 s long). A reordered input's
    # (B-frames) are not its frames', but the gaps in decoding order: none is kept.
    lengths: dict[int, int] = {}
    written = 0
    size = stretched = None
    # A frame stamped no later than the one before (a muxer's or recorder's slip) is
    # left out, as ffmpeg leaves it out at a variable rate: an mp4 refuses it, and two
    # frames at one time show as one.
    last_pts, unordered = None, 0
    first_shape = None
    at = 0.0
    source = decoded()
    frames = _after_kept(source, kept, frames_fn, dst) if kept else frames_fn(source)
    try:
        if not isinstance(frames, Iterable):  # None was a bare TypeError
            raise _not_frames(dst, frames)
        index = -1
        for index, image in enumerate(frames):
            resumed = index < kept  # its packets are copied from a kept piece
            if resumed:
                image = np.empty((*work.record["shape"], 3), np.uint8)  # its size alone is looked at
            else:
                _check_frame(image, index, first_shape, dst)
            first_shape = first_shape or image.shape[:2]
            if not stamps:  # each frame out takes the times of one in (a bare IndexError)
                raise InputError(f"cannot write {dst}: the frames function gave a frame more than the {index} it was "
                                 "given: one frame out for each in is wanted")
            pts, taken, length = stamps.popleft()
            if grid is not None:
                pts = grid.place(pts)
            elif not constant and ticks != 1:
                pts = round(pts * ticks)
            if variable and length:
                lengths[pts] = round(length / time_base)
            if size is None:
                stretched = _keep_first(video_out, codec, first[0], image, options, src, dst, flags) if first else None
                shape = stretched or (image.shape[1], image.shape[0])
                size = encoded_size(*shape, options.pix_fmt, codec)
                if size != shape:
                    log.warning("%s", fit_warning(options.pix_fmt, *shape, size))
                video_out.width, video_out.height = size
                if codec == "libx265" and size[0] < X265_CUTREE_NARROWEST:
                    video_out.codec_context.options = _merged(video_out.codec_context.options,
                                                              {"x265-params": "cutree=0"})
                if codec == "libsvtav1" and svt_av1_stalls(size):
                    video_out.codec_context.options = _merged(video_out.codec_context.options, SVT_AV1_ONE_THREAD)
                # Coded as it will be read, else its colours come back shifted.
                colour = as_read(colour, _matrix_read(codec, out.format.name, options.pix_fmt, colour.matrix), *size)
                video_out.codec_context.colorspace = colour.matrix
                refused_size = _size_refusal(dst, codec, options, size, flags)
                if refused_size:  # the command refuses most before its model loads (check_size)
                    try:
                        raise refused_size
                    finally:
                        del refused_size  # else held by this frame, in its traceback: a cycle, with the frames
                setup.append(_setup_of(video_out.codec_context))
                try:
                    # Now, not on the first mux (maybe of a sound packet), so that options
                    # the encoder refuses (a bad preset, a tiny bitrate) are blamed on it.
                    _open_saying_why(video_out.codec_context)
                except av.error.FFmpegError as e:
                    if (short := short_of_memory_to_open(codec, e)) is not None:
                        raise short from None
                    raise refused(e, getattr(e, "said", None), size) from None
                if work is not None and not work.opened(image.shape[:2], video_out.codec_context.extradata):
                    work.remove()
                    raise InputError(f"cannot write {dst}: the work kept from a stopped run does not join what "
                                     f"{codec} makes now (its headers differ): it is removed; run again to start "
                                     "over")
                if kept:
                    copying[0] = work.packets(work.kept[0], time_base)
                elif work is not None:
                    work.start(0)
            if resumed:
                frame = None
            else:
                if stretched:
                    image = resize(image[:, :, :3], stretched[1], stretched[0])
                frame = coded(np.ascontiguousarray(fit(image[:, :, :3], size)), options.pix_fmt, colour)
            at = float((taken[0] if constant and taken else pts) * time_base)  # where the frame is shown
            if work is not None and index and index % work.every == 0:
                next_piece(index, at)
            mux_side(index)
            settled = [(frame, k) for k in taken] if constant else [(frame, pts)]
            if not constant and last_pts is not None and pts <= last_pts:
                settled, unordered = [], unordered + 1
            elif not constant:
                last_pts = pts
            if not written and settled and out.format.name == "avi" and sounded:
                settled = _avi_lead(first_at[0], time_base, settled)
            if resumed:
                copy(len(settled))
            else:
                for shown_frame, slot in settled:
                    encode(shown_frame, slot)
            written += len(settled)
            if progress is not None and not resumed:  # kept frames are not this run's work
                progress(index + 1)
        if stamps:  # else a shorter video went out on the first frames' times, unsaid
            raise InputError(f"cannot write {dst}: the frames function gave {index + 1} frames for the "
                             f"{index + 1 + len(stamps)} it was given: one frame out for each in is wanted")
        # One that stops taking them (islice) wrote the first frames alone, unsaid, and
        # one that takes none had the source said to have no video frames.
        if next(source, None) is not None:
            raise InputError(f"cannot write {dst}: the frames function took {index + 1} frames and stopped before "
                             "the video's end: one frame out for each in is wanted")
        copy(None)
        encode(None)
        if work is not None and work.writing:
            work.close_piece(index + 1, at)
        mux_side(None)
        for e, seconds in cut_sound.values():
            if not reach.complete:  # a part that ends before the file: more may have come
                damaged_sound(e, seconds)
            reach.cut_short = "sound"
        for index, target in side.items():
            if target.resampler is not None:
                encode_sound(index, target, None)
    except KeyboardInterrupt:
        raise  # Ctrl-C must not wait for a tile in progress, as closing ``frames`` would
    except BaseException as e:
        # The frame workers read ``inp``, which the caller closes next: they must have
        # stopped first (closing an ordered_map waits for its threads).
        close = getattr(frames, "close", None)
        if close is not None:
            close()
        if isinstance(e, av.error.FFmpegError):
            # From the output side: decoding and video encoding errors are InputErrors
            # by now, so this is muxing, or re-encoding the sound.
            if isinstance(dst, VideoOutput) and _broken_pipe(e):
                raise dst.closed_early() from None
            if isinstance(e, OSError):
                raise _cannot_write(dst, e) from None
            raise InputError(f"{dst}: cannot encode: {_reason(e)}") from None
        raise
    if written == 0 and window is not None:
        until = () if options.duration is None else (f" for {float(options.duration):g} s (",
                                                     _part_option("duration", flags), ")")
        raise InputError(f"{src}: no video frame from {float(options.start):g} s (", _part_option("start", flags),
                         ") on", *until)
    if written == 0 and inp.format.name.startswith("mov,") and (damage := _index_damage(src) or opened and (
            f"its index (moov) is damaged (FFmpeg's demuxer says: {opened[0]})") or not video_read[0] and (
            listed := video_in.frames) and f"none of the {listed} its index (moov) lists could be read where it "
                                            "places them (a damaged index, or a file cut short)"):
        # Its track there, its frames not found: a box of the track's table damaged.
        raise InputError(f"{src}: cannot find its video frames: {damage}")
    if written == 0:
        raise InputError(f"{src}: has no decodable video frames")
    if unordered:
        log.warning("%s: %d frame%s stamped no later than the frame before it left out, as ffmpeg leaves them out",
                    src, unordered, "s" * (unordered > 1))
    if skipped_cues[0]:
        log.warning("%s: %d damaged subtitle cue%s skipped (%s)", src, skipped_cues[0], "s" * (skipped_cues[0] > 1),
                    flags.named("--skip-damaged", "skip_damaged"))
    if skipped_sound[0]:
        log.warning("%s: %d damaged sound packet%s skipped (%s): the sound has a gap there", src, skipped_sound[0],
                    "s" * (skipped_sound[0] > 1), flags.named("--skip-damaged", "skip_damaged"))
    for kind, count in sorted(backward.items()):
        log.warning("%s: %d %s packet%s stamped before the one before it left out (damaged, most likely): the %s "
                    "has a gap there", src, count, kind, "s" * (count > 1), "sound" if kind == "audio" else kind)
    if shifted[0] is None:  # else what was lost is said (a gap's, not a cut's)
        _warn_if_truncated(inp, src, reach)
    video_streams.name_empty(inp, side, fed, out, dst, part=window is not None)
    return written, boxed
