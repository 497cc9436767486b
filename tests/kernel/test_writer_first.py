"""The writer's turn at the GIL (switchboard.consumer.WriterFirst): pure threading."""

from __future__ import annotations

import threading

from switchboard.consumer import WriterFirst

WAIT = 5.0


def waiter(turn: WriterFirst) -> tuple[threading.Thread, threading.Event]:
    """A thread standing for the loop: it sets its event once the writer lets it decode."""
    through = threading.Event()

    def loop() -> None:
        turn.wait_for_writer()
        through.set()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread, through


def test_the_loop_waits_while_the_writer_runs_python_and_goes_on_inside_its_engine_calls() -> None:
    turn = WriterFirst()
    writing, engine_call, done = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:
        with turn.writing():
            writing.set()
            engine_call.wait(WAIT)
            with turn.outside():  # a ClickHouse call
                done.wait(WAIT)

    threading.Thread(target=writer, daemon=True).start()
    assert writing.wait(WAIT)
    _, through = waiter(turn)
    assert not through.wait(0.3), "the loop decoded while the writer ran Python"
    engine_call.set()
    assert through.wait(WAIT), "the loop still waited while the writer was inside ClickHouse"
    done.set()


def test_the_writer_takes_its_turn_back_after_an_engine_call() -> None:
    turn = WriterFirst()
    back, release = threading.Event(), threading.Event()

    def writer() -> None:
        with turn.writing():
            with turn.outside():
                pass
            back.set()
            release.wait(WAIT)

    threading.Thread(target=writer, daemon=True).start()
    assert back.wait(WAIT)
    _, through = waiter(turn)
    assert not through.wait(0.3)
    release.set()
    assert through.wait(WAIT)


def test_outside_is_nothing_for_a_thread_without_the_turn() -> None:
    turn = WriterFirst()
    with turn.outside():  # an API query, with no write running
        pass
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with turn.writing():
            holding.set()
            release.wait(WAIT)

    threading.Thread(target=writer, daemon=True).start()
    assert holding.wait(WAIT)
    with turn.outside():  # another thread's call does not give the writer's turn away
        _, through = waiter(turn)
        assert not through.wait(0.3)
    release.set()
    assert through.wait(WAIT)


def test_an_idle_writer_holds_up_nothing() -> None:
    turn = WriterFirst()
    _, through = waiter(turn)
    assert through.wait(WAIT)
