"""Benchmark part: a class contributing drawings at once (issue #22), run by `bench/bench_lecture.py --part
contribute --students 100`.

The lecturer's collection of three shapes is opened in the class folder; N students are Streamlit websocket
sessions (bench/st_protocol.py) on the Collect drawings page of `streamlit run app.py` in class mode. Each
draws one shape every `period` seconds for `seconds` seconds, as a browser does: at pen up the canvas component
sends its value (a real canvas image: the shape the page asks for, rendered as the canvas holds it — black ink
on a transparent 280×280 PNG, tests/strokes.py — at a random size and place with a random pen), the page runs;
then the student presses "Add this circle" and waits until the page counts it ("You have drawn k of …").

Measured: from pen up to the count updated (p50/p90/max), and from the press of Add alone; the drawings each
student actually managed against one every `period` s; the web process's CPU (its share of one core) and its
RSS; nothing lost: the drawings in the store (the SQLite file) against the Add presses, student by student.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

CANVAS = "streamlit-drawable-canvas.streamlit_drawable_canvas"   # webapp/canvas.py CANVAS_COMPONENT
SHAPES = ("circle", "square", "triangle")


def canvas_value(shape: str, rng: np.random.Generator) -> dict:
    """What the canvas component sends at pen up: its Fabric JSON (one path) and the drawing as a PNG data URL."""
    from strokes import render, shape_places, shape_stroke

    size, left, top = shape_places(1, seed=int(rng.integers(1 << 30)))[0]
    rgba = render([shape_stroke(shape, size, left, top)], width=int(rng.integers(10, 31)))
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return {"drawing": {"raw": {"version": "5.3.0", "objects": [{"type": "path"}]}, "data": url}}


class Student:
    """One student's tab and what it measured."""

    def __init__(self, session, seed: int) -> None:
        self.s = session
        self.rng = np.random.default_rng(seed)
        self.pressed = 0            # Add presses sent
        self.counted = 0            # of them, counted back on the page
        self.pen_to_count: list[float] = []
        self.add_to_count: list[float] = []
        self.late = 0.0             # seconds behind the one-every-period pace, summed
        self.failure = ""

    async def draw(self, start: float, until: float, period: float, timeout: float) -> None:
        due = start
        while due < until:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            self.late += max(0.0, time.monotonic() - due)
            label = self.s.newest_label("button", "Add this ")
            shape = label.removeprefix("Add this ")
            t0 = time.perf_counter()
            await self.s.set_component(CANVAS, canvas_value(shape if shape in SHAPES else "circle", self.rng))
            t1 = time.perf_counter()
            waiting = asyncio.create_task(
                self.s.wait_for_text(re.compile(rf"You have drawn {self.counted + 1} of"), timeout))
            await asyncio.sleep(0)
            await self.s.press(label)
            self.pressed += 1
            try:
                await waiting
            except TimeoutError:
                self.failure = f"drawing {self.pressed} not counted within {timeout:.0f} s ({self.s.errors[-1:]})"
                return
            t2 = time.perf_counter()
            self.counted += 1
            self.s.forget_component(CANVAS)   # the page put a fresh canvas (a new key) for the next drawing
            self.pen_to_count.append(t2 - t0)
            self.add_to_count.append(t2 - t1)
            due += period


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def contribute(n: int, seconds: float, period: float, work: Path, start_server, stop_server, cpu_seconds,
               tree_rss, mb) -> None:
    from st_protocol import ProtocolSession

    runs_dir = work / "runs-contribute"
    runs_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(CNNKIT_RUNS_DIR=str(runs_dir), CNNKIT_CLASS_MODE="1")
    from cnnkit import class_drawings, identity, settings

    settings.reset()
    store = class_drawings.store_for(None, class_mode=True)
    c = store.open("shapes", ", ".join(SHAPES), per_student=10_000, total=1_000_000)   # the lecturer opens it
    print(f"\n== contribute: {n} students (Streamlit websocket sessions) on the Collect drawings page, one drawing "
          f"every {period:g} s each for {seconds:g} s (target {n / period:.0f} drawings/s), class mode ==")
    proc, url = start_server(Path(__file__).resolve().parent.parent, runs_dir, work / "contribute.log")
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="students").start()

    def run(coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    students: list[Student] = []
    try:
        web_idle, _ = tree_rss(proc.pid)

        async def open_all() -> list[Student]:
            gate = asyncio.Semaphore(8)

            async def one(i: int) -> Student:
                async with gate:
                    s = ProtocolSession(url, identity.COOKIE_NAME)
                    await s.open("collect")
                    return Student(s, seed=i)

            return await asyncio.gather(*(one(i) for i in range(n)))

        t = time.time()
        students = run(open_all(), timeout=600)
        print(f"{n} students opened the page in {time.time() - t:.0f} s")

        async def all_draw() -> None:
            start = time.monotonic() + 0.5
            until = start + seconds
            # each starts at their own moment within the first period, as a class does
            await asyncio.gather(*(st.draw(start + period * i / n, until, period, timeout=120)
                                   for i, st in enumerate(students)))

        cpu0, bench0, t0 = cpu_seconds(proc.pid), time.process_time(), time.time()
        load0 = os.getloadavg()
        peak = [0]

        def watch_rss() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(proc.pid)[0])
                done.wait(1.0)

        done = threading.Event()
        threading.Thread(target=watch_rss, daemon=True).start()
        run(all_draw(), timeout=seconds + 600)
        done.set()
        wall = time.time() - t0
        web_cpu, kids_cpu = (b - a for a, b in zip(cpu0, cpu_seconds(proc.pid), strict=True))
        bench_cpu = time.process_time() - bench0
        load1 = os.getloadavg()

        pen = [x for st in students for x in st.pen_to_count]
        add = [x for st in students for x in st.add_to_count]
        pressed = sum(st.pressed for st in students)
        counted = sum(st.counted for st in students)
        stored = sum(store.class_counts(c.id))
        per_student = store.student_counts(c.id)
        mine = {identity.owner_key(st.s.cookie.split("=", 1)[1]): st.pressed for st in students}
        mismatched = [k for k, v in mine.items() if per_student.get(k, 0) != v]
        failures = [st.failure for st in students if st.failure]
        print(f"drawings: {pressed} Add presses, {counted} counted back on the page, {stored} in the store "
              f"({', '.join(f'{s} {k}' for s, k in zip(SHAPES, store.class_counts(c.id), strict=True))}) — "
              + ("nothing lost" if stored == pressed and not mismatched else
                 f"MISMATCH: {len(mismatched)} students' counts differ"))
        print(f"rate: {pressed / wall:.1f} drawings/s achieved over {wall:.0f} s (target {n / period:.1f}); "
              f"behind the pace per drawing on average {sum(st.late for st in students) / max(1, pressed):.2f} s")
        print(f"pen up → count updated: p50 {statistics.median(pen):.2f} s, p90 {pct(pen, 0.9):.2f} s, "
              f"max {max(pen):.2f} s (n={len(pen)}); Add pressed → counted: p50 {statistics.median(add):.2f} s, "
              f"p90 {pct(add, 0.9):.2f} s")
        print(f"CPU: web process {web_cpu:.0f} s in {wall:.0f} s = {web_cpu / wall:.0%} of one core "
              f"({1000 * web_cpu / max(1, pressed):.0f} ms a drawing: its page runs), its worker processes "
              f"{kids_cpu:.0f} s, this benchmark's process {bench_cpu:.0f} s; web RSS idle {mb(web_idle)}, peak "
              f"{mb(peak[0])}")
        print(f"load average (1 min) {load0[0]:.1f} before, {load1[0]:.1f} after; {psutil.cpu_count()} cores")
        if failures:
            print(f"{len(failures)} students stopped: {failures[:3]}")
    finally:
        stop_server(proc)

        async def close_all() -> None:
            if students:
                await asyncio.wait([asyncio.create_task(st.s.close()) for st in students], timeout=10)

        try:
            run(close_all(), timeout=30)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
