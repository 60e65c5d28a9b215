from fractions import Fraction

import pytest

from ncnn_sr.timecode import retimed, to_frames, to_label

NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize("label,frames", [
    ("00:00:59;29", 1799), ("00:01:00;02", 1800),  # 00:01:00;00 and ;01 do not exist
    ("00:09:59;29", 17981), ("00:10:00;00", 17982),  # nor are skipped at the tenth minute
    ("01:00:00;00", 107892),
])
def test_drop_frame_labels_count_frames_as_smpte_does(label, frames):
    assert to_frames(label, NTSC) == (frames, True)
    assert to_label(frames, NTSC, drop=True) == label


def test_every_drop_frame_count_comes_back_from_its_label():
    for rate in (NTSC, Fraction(60000, 1001)):
        for frames in range(0, 40000, 7):
            label = to_label(frames, rate, drop=True)
            assert to_frames(label, rate) == (frames, True), label


def test_non_drop_labels_count_whole_timecode_seconds():
    assert to_frames("01:02:03:04", Fraction(24)) == ((3600 + 120 + 3) * 24 + 4, False)
    assert to_label((3600 + 120 + 3) * 24 + 4, Fraction(24), drop=False) == "01:02:03:04"


def test_a_label_is_carried_to_the_same_instant_at_another_rate():
    assert retimed("01:02:03:04", Fraction(24), Fraction(30)) == "01:02:03:05"  # 4/24 s is 5/30 s
    assert retimed("01:02:03:04", Fraction(24), Fraction(1, 2)) is None  # no frames to count
    assert retimed("01:00:00;00", NTSC, Fraction(25)) == "01:00:00:00"  # 3599.996 s
    assert retimed("00:00:10:12", Fraction(25), NTSC) == "00:00:10:14"  # 10.48 s is frame 314, non-drop kept


@pytest.mark.parametrize("label", ["bogus", "01:02:03", "01:61:00:00", "01:00:00:24", ""])
def test_what_is_not_a_timecode_at_that_rate_is_not_read(label):
    assert retimed(label, Fraction(24), Fraction(30)) is None


def test_labels_drop_frame_skips_are_not_read():
    assert to_frames("00:01:00;00", NTSC) is None and to_frames("00:01:00;01", NTSC) is None
    assert to_frames("00:10:00;00", NTSC) == (17982, True)  # every tenth minute keeps them
