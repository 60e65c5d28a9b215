"""The helper-thread call that lets a Ctrl-C out of a long upscale at once."""
import threading
import time
import types

import pytest

from locks_taken_back import CtrlCAsTakenBack
from ncnn_sr import interruptible


def _work_until_stopped(started: threading.Event, ended: threading.Event):
    def work(report):
        started.set()
        try:
            for done in range(1, 10_000):
                report(done, 10_000)
                threading.Event().wait(0.01)
            return "finished"
        finally:
            ended.set()
    return work


def test_a_ctrl_c_that_lands_as_the_helper_starts_still_stops_the_work_and_says_so(monkeypatch):
    # CI hung 90 minutes: a Ctrl-C that came out of Thread.start (the helper already
    # running) skipped the caller's clean-up, so the helper waited forever on a
    # progress answer and close() waited forever on the helper
    started, ended, left = threading.Event(), threading.Event(), []
    real_start = threading.Thread.start

    class CtrlCAtStart(threading.Thread):
        def start(self):
            real_start(self)
            started.wait(10)
            raise KeyboardInterrupt
    monkeypatch.setattr(interruptible.threading, "Thread", CtrlCAtStart)
    with pytest.raises(KeyboardInterrupt):
        interruptible.run(_work_until_stopped(started, ended), lambda done, total: None,
                          lambda: left.append(1))
    assert left == [1]
    assert ended.wait(10), "the helper went on after its caller left"


def test_a_ctrl_c_while_waiting_leaves_at_once_and_the_work_stops_at_its_next_report():
    started, ended, left, seen = threading.Event(), threading.Event(), [], []

    def progress(done, total):
        seen.append(done)
        if done == 3:
            raise KeyboardInterrupt  # as a Ctrl-C raised in the caller's thread would
    with pytest.raises(KeyboardInterrupt):
        interruptible.run(_work_until_stopped(started, ended), progress, lambda: left.append(1))
    assert seen == [1, 2, 3] and ended.wait(10)
    assert left == []  # the work ended with the call: nothing was left running


def test_the_work_s_result_and_exception_come_out_in_the_caller_s_thread():
    caller = threading.get_ident()
    threads = []
    assert interruptible.run(lambda report: (report(1, 1), "out")[1],
                             lambda done, total: threads.append(threading.get_ident()),
                             lambda: None) == "out"
    assert threads == [caller]

    def fails(report):
        raise OSError("disk gone")
    with pytest.raises(OSError, match="disk gone"):
        interruptible.run(fails, None, lambda: None)


def test_a_second_ctrl_c_that_loses_the_helper_s_answer_still_stops_the_work(monkeypatch):
    # A second Ctrl-C landing in the caller's clean-up, before the answer the helper
    # waits on was put, left the helper waiting for ever (and close() on it).
    started, ended = threading.Event(), threading.Event()

    class LosesFalse(interruptible.Queue):
        def put(self, item, *args, **kwargs):
            if item is False:
                raise KeyboardInterrupt  # as each Ctrl-C would, landing as it is put
            super().put(item, *args, **kwargs)
    monkeypatch.setattr(interruptible, "Queue", LosesFalse)

    def progress(done, total):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        interruptible.run(_work_until_stopped(started, ended), progress, lambda: None)
    assert ended.wait(10), "the helper waited for ever on an answer"


def test_a_ctrl_c_landing_in_the_callers_clean_up_still_stops_the_work_and_says_so(monkeypatch):
    # A third Ctrl-C (Python's own handler raises at each) landing in the caller's
    # finally before it told the helper: the helper waited for ever on a progress
    # answer, and so did close(), at Python's exit too.
    import _thread
    started, ended, left = threading.Event(), threading.Event(), []

    class CtrlCInSet(threading.Event):
        landed = False

        def set(self):
            if not CtrlCInSet.landed:
                CtrlCInSet.landed = True
                raise KeyboardInterrupt  # as a Ctrl-C landing as the caller sets it
            super().set()
    monkeypatch.setattr(interruptible, "threading", types.SimpleNamespace(**{**vars(threading), "Event": CtrlCInSet}))

    def work(report):
        started.set()
        try:
            report(1, 3)
            _thread.interrupt_main()  # the first Ctrl-C, while the caller waits
            threading.Event().wait(0.5)
            report(2, 3)
            report(3, 3)
            return "finished"
        finally:
            ended.set()
    with pytest.raises(KeyboardInterrupt):
        interruptible.run(work, lambda done, total: None, lambda: left.append(1))
    assert CtrlCInSet.landed
    assert ended.wait(10), "the helper waited for ever on an answer"
    assert left == [1]


def test_a_caller_gone_without_its_clean_up_still_stops_the_work(monkeypatch):
    # A Ctrl-C landing before any step of the clean-up: the helper sees its caller
    # has left the call's frame.
    import _thread
    ended = threading.Event()

    def no_clean_up(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(interruptible, "_tell_helper", no_clean_up)

    def work(report):
        try:
            report(1, 3)
            _thread.interrupt_main()
            threading.Event().wait(0.5)
            report(2, 3)
            return "finished"
        finally:
            ended.set()
    with pytest.raises(KeyboardInterrupt):
        interruptible.run(work, lambda done, total: None, lambda: None)
    assert ended.wait(10), "the helper waited for ever on an answer"


def test_the_call_keeps_nothing_alive_once_it_has_returned():
    # The frame the helper watches is not kept in a cycle with it: the picture and
    # its result (hundreds of MB) waited for the next full collection.
    import gc
    import weakref

    class Result:
        pass
    gc.disable()
    try:
        out = interruptible.run(lambda report: (report(1, 1), Result())[1], lambda done, total: None,
                                lambda: None)
        result = weakref.ref(out)
        del out
        for _ in range(3000):  # a bound against a hang: 1 s could pass on a loaded machine
            if result() is None:
                break
            threading.Event().wait(0.01)  # the helper thread's own end
        assert result() is None
    finally:
        gc.enable()


def test_a_failed_call_keeps_nothing_alive_once_it_has_raised():
    # The error, raised again from a local of the caller's frame, held that frame in
    # a cycle through its traceback, and with it the work's own frames: the picture
    # and what was made of it waited for the next full collection.
    import gc
    import weakref

    class Picture:
        pass
    made = []

    def fails(report):
        picture = Picture()
        made.append(weakref.ref(picture))
        raise RuntimeError("vkQueueSubmit failed")
    gc.collect()
    gc.disable()
    try:
        with pytest.raises(RuntimeError, match="vkQueueSubmit"):
            interruptible.run(fails, None, lambda: None)
        for _ in range(3000):  # a bound against a hang: 1 s could pass on a loaded machine
            if made[0]() is None:
                break
            threading.Event().wait(0.01)  # the helper thread's own end
        assert made[0]() is None
    finally:
        gc.enable()


def test_the_work_its_caller_left_frees_what_its_frames_held_as_it_ends(monkeypatch):
    # Its error (Abandoned), put for a caller gone, was kept in a cycle with its queue
    # through its traceback: the work's frames (the picture and its result, a stopped
    # run's open extractor) waited for a full collection.
    import gc
    import weakref

    started, ended, helpers, refs = threading.Event(), threading.Event(), [], []
    real_start = threading.Thread.start

    class Held:
        pass

    class CtrlCAtStart(threading.Thread):
        def start(self):
            helpers.append(self)
            real_start(self)
            started.wait(10)
            raise KeyboardInterrupt

    def work(report):
        held = Held()
        refs.append(weakref.ref(held))
        started.set()
        try:
            for done in range(1, 10_000):
                report(done, 10_000)
                threading.Event().wait(0.01)
        finally:
            ended.set()

    monkeypatch.setattr(interruptible.threading, "Thread", CtrlCAtStart)
    gc.disable()
    try:
        with pytest.raises(KeyboardInterrupt):
            interruptible.run(work, lambda done, total: None, lambda: None)
        assert ended.wait(10)
        helpers[0].join(10)
        assert not helpers[0].is_alive() and refs[0]() is None
    finally:
        gc.enable()


def test_a_ctrl_c_as_the_caller_takes_back_the_queue_from_the_helper_leaves_the_helper_sound(monkeypatch):
    # The caller waits for the helper in 0.25 s waits on a queue: one whose time was
    # up, taking the queue's lock back from the helper putting its progress, was cut by
    # the Ctrl-C with the lock not taken, and released it under the helper, whose
    # notify raised RuntimeError ('cannot notify on un-acquired lock') instead of the
    # work stopping at its report (as workers.Queue's test in test_pipeline.py).
    ctrl_c, raised, ended = CtrlCAsTakenBack(), [], threading.Event()

    def work(report):
        # Once the caller waits on the queue (its start over): the helper's next lock is
        # the queue's, which it puts its progress into.
        time.sleep(0.1)
        ctrl_c.arm()
        try:
            report(1, 2)
            return "finished"
        except BaseException as e:
            raised.append(e)
            raise
        finally:
            ended.set()
    with ctrl_c.watching(monkeypatch), pytest.raises(KeyboardInterrupt):
        interruptible.run(work, lambda done, total: None, lambda: None)
    assert ended.wait(10), "the helper went on after its caller left"
    assert ctrl_c.fired
    assert [type(e) for e in raised] == [interruptible.Abandoned], raised
