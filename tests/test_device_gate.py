"""The gate of a GPU (device_gate): calls within their share run together, a call
that takes every share runs alone, and a thread's holds nest."""
import threading

import numpy as np

from ncnn_sr.device_gate import Gate, gate


def started(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def wait_till(condition) -> None:
    """Polls ``condition`` every 10 ms for up to 30 s: the gate says no more of a
    call that waits at it."""
    for _ in range(3000):
        if condition():
            return
        threading.Event().wait(0.01)


def test_shared_holds_run_together():
    g, both = Gate(), threading.Barrier(2, timeout=10)

    def hold():
        with g.shared():
            both.wait()  # broken (BrokenBarrierError) if the second could not come in

    threads = [started(hold) for _ in range(2)]
    for thread in threads:
        thread.join(10)
    assert not both.broken and not any(thread.is_alive() for thread in threads)


def test_an_alone_hold_waits_for_the_shared_ones_and_later_shared_ones_wait_for_it():
    g, events = Gate(), []
    first_in, release_first = threading.Event(), threading.Event()

    def first():
        with g.shared():
            first_in.set()
            release_first.wait(10)
            events.append("first out")

    def alone():
        with g.alone():
            events.append("alone in")
            events.append("alone out")

    def later():
        with g.shared():
            events.append("later in")

    threads = [started(first)]
    first_in.wait(10)
    threads.append(started(alone))
    while not g._waiting_alone:  # the alone hold is waiting before the later call comes
        threading.Event().wait(0.01)
    threads.append(started(later))
    threading.Event().wait(0.2)
    assert events == []  # neither may begin while the first is in
    release_first.set()
    for thread in threads:
        thread.join(10)
    assert events == ["first out", "alone in", "alone out", "later in"]


def test_a_threads_holds_nest_without_waiting_for_themselves():
    g, done = Gate(), []

    def nested():
        with g.shared():
            with g.alone():
                with g.shared():
                    done.append(1)
        with g.alone():
            with g.alone():
                done.append(2)

    thread = started(nested)
    thread.join(10)
    assert done == [1, 2] and not g._holds and g._alone is None


def test_one_gate_a_gpu():
    assert gate(0) is gate(0) and gate(0) is not gate(1)


def test_two_threads_holding_shares_that_each_ask_for_the_gpu_alone_both_go_on():
    # Each waited for the other's share to end, and neither ended: a progress callback
    # upscaling a big picture in two threads at once hung both for ever.
    g, both_in, got = Gate(), threading.Barrier(2, timeout=10), []

    def upgrade():
        with g.shared():
            both_in.wait()
            with g.alone() as alone:
                got.append(alone)

    threads = [started(upgrade) for _ in range(2)]
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(got) == [False, True] and not g._holds and g._alone is None


def test_holds_taken_in_a_helper_for_a_thread_nest_in_that_threads_holds():
    # A call in the main thread runs its work in a helper (interruptible) and its
    # progress in the main thread: a call made from that progress is another helper,
    # and waited for the first's hold, which waited for the progress.
    from ncnn_sr.device_gate import acting_for

    g, owner, done = Gate(), threading.get_ident(), []

    def nested():
        with acting_for(owner), g.alone() as alone:
            done.append(alone)

    with g.shared():
        thread = started(nested)
        thread.join(10)
    assert done == [True] and not g._holds and g._alone is None


def test_alone_holds_of_one_owner_in_two_threads_may_end_in_any_order():
    # A helper abandoned by a Ctrl-C still runs to its next window while its caller
    # calls again: the first to end left the gate held alone for ever.
    from ncnn_sr.device_gate import acting_for

    g, owner = Gate(), 12345
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with acting_for(owner), g.alone():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with acting_for(owner), g.alone():
            second_in.set()
            first_out.wait(10)

    threads = [started(first), started(second)]
    for thread in threads:
        thread.join(10)
    assert not g._holds and g._alone is None
    later = started(lambda: g.shared().__enter__())
    later.join(5)
    assert not later.is_alive()


def test_a_call_after_a_ctrl_c_waits_for_the_hold_its_abandoned_helper_still_has(monkeypatch):
    # The main thread's call runs in a helper, which a Ctrl-C leaves inside its window,
    # holding the GPU, till its next tile. Its holds were the main thread's: the next
    # call there nested in them, and ran beside a run that needed the GPU alone.
    import signal

    from conftest import picture
    from ncnn_sr import Upscaler, device_gate

    assert threading.current_thread() is threading.main_thread()
    g = Gate()
    # The CPU takes no hold: each call here takes this gate alone, as a trunk past its
    # share of a GPU does.
    monkeypatch.setattr(device_gate, "hold", lambda device, alone=False: g.alone())
    up = Upscaler("realesr-animevideov3-x2", device=-1)
    image = picture(12, 8)
    expected = up.upscale(image)
    events, first_in, release_first = [], threading.Event(), threading.Event()
    real = Upscaler._window_output

    def window(self, *args, **kwargs):
        if not first_in.is_set():
            events.append("first in")
            first_in.set()
            release_first.wait(30)
            events.append("first out")
        else:
            events.append("second in")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Upscaler, "_window_output", window)
    main = threading.main_thread().ident

    def ctrl_c():
        first_in.wait(30)
        signal.pthread_kill(main, signal.SIGINT)

    def release():  # once the second call waits for the first's hold, or runs beside it
        wait_till(lambda: g._waiting_alone or "second in" in events)
        release_first.set()

    started(ctrl_c)
    try:
        up.upscale(image)
    except KeyboardInterrupt:
        pass
    assert events == ["first in"]
    started(release)
    out = up.upscale(image)
    assert events == ["first in", "first out", "second in"]
    assert np.array_equal(out, expected)
    up.close()


def test_the_last_progress_of_a_call_runs_once_its_hold_is_let_go(monkeypatch):
    # The progress after the last tile (a bar redrawn, a line written) kept the call's
    # hold, its work over: a call that takes the GPU alone waited for it, and every
    # call after that one.
    from conftest import picture
    from ncnn_sr import Upscaler, device_gate

    g, alone = Gate(), set()
    monkeypatch.setattr(device_gate, "hold", lambda device, alone_=False: g.alone()
                        if threading.get_ident() in alone else g.shared())
    up = Upscaler("realesr-animevideov3-x2", device=-1)
    image = picture(12, 8)
    expected = up.upscale(image)
    events, in_progress, go_on, outs = [], threading.Event(), threading.Event(), {}

    def progress(done, total):
        events.append(("progress", done, total))
        in_progress.set()
        go_on.wait(30)

    def first():
        outs["first"] = up.upscale(image, progress=progress)

    def second():
        alone.add(threading.get_ident())
        in_progress.wait(30)
        outs["second"] = up.upscale(image)
        events.append("second out")

    threads = [started(first), started(second)]
    wait_till(lambda: g._waiting_alone or "second out" in events)  # out, or waiting for the first's hold
    events.append("progress let go")
    go_on.set()
    for thread in threads:
        thread.join(30)
    assert events == [("progress", 1, 1), "second out", "progress let go"]
    assert np.array_equal(outs["first"], expected) and np.array_equal(outs["second"], expected)
    up.close()


def test_an_upscaler_closed_from_the_progress_of_a_call_on_its_gpu_does_not_wait_for_a_call_behind_that_ones_hold(
        monkeypatch):
    # The call to close waited at the GPU's gate for the hold of the call whose progress
    # closed it, which waited for its progress: both hung for ever.
    from conftest import picture
    from ncnn_sr import Upscaler, device_gate

    alone = set()
    monkeypatch.setattr(device_gate, "_gates", {})
    # The CPU takes no hold: these take its gate as a GPU's calls do, the second alone.
    monkeypatch.setattr(device_gate, "hold", lambda device, alone_=False: device_gate.gate(device.index).alone()
                        if threading.get_ident() in alone else device_gate.gate(device.index).shared())
    first, second = (Upscaler("realesr-animevideov3-x2", device=-1, tile=32) for _ in range(2))
    g = device_gate.gate(first.device.index)
    image = picture(20, 100)  # tiles: a progress before the last step, in the first call's hold
    expected = first.upscale(image)
    in_progress, events, outs = threading.Event(), [], {}

    def progress(done, total):
        if in_progress.is_set():
            return
        in_progress.set()
        wait_till(lambda: g._waiting_alone)  # the second call waits for this one's hold
        second.close()
        events.append("closed")

    def run_first():
        outs["first"] = first.upscale(image, progress=progress)

    def run_second():
        alone.add(threading.get_ident())
        in_progress.wait(30)
        outs["second"] = second.upscale(image)

    threads = [started(run_first), started(run_second)]
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads) and events == ["closed"]
    assert np.array_equal(outs["first"], expected) and np.array_equal(outs["second"], expected)
    assert second.closed and second._net._net is None  # freed as its call ended
    first.close()
