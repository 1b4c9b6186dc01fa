"""A Streamlit session without a browser: the app's websocket protocol, spoken by a few lines of asyncio.

What a browser tab does to the server is all that this client does: it opens `/_stcore/stream` with the
student's identity cookie, asks for a page, sends widget values and button presses as the frontend does
(`BackMsg.rerun_script` with the session's widget states), and reruns every `st.fragment(run_every=…)`
at the interval the server announces (`ForwardMsg.auto_rerun`), as the frontend's timer does. What it does
not do is draw: the server's work per student is the same, the 2-core machine's CPU no longer also lays
out and paints thirty pages (in a real lecture each student's own device does that).

Used by bench/bench_lecture.py (`--clients protocol`, and the students who draw: `--part contribute`, who send a
drawn image as the canvas component's value, as the canvas does at pen up).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

READABLE = {"markdown", "text", "alert", "progress", "heading", "metric", "code", "exception"}
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
            ForwardMsg.FINISHED_EARLY_FOR_RERUN, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}


class ProtocolSession:
    """One student's tab: `await s.open("training")`, `await s.set_number("Epochs", 1)`,
    `await s.press("Start training")`, `await s.wait_for_text(pattern)`."""

    def __init__(self, url: str, cookie_name: str, owner_id: str | None = None) -> None:
        self.ws_url = url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.cookie = f"{cookie_name}={owner_id or secrets.token_urlsafe(24)[:32]}"
        self.widgets: dict[str, object] = {}          # widget id → its WidgetState (as the frontend keeps them)
        self.by_label: dict[tuple[str, str], object] = {}   # (kind, label) → the element proto
        self.seen: dict[tuple[str, str], int] = {}          # (kind, label) → when it last arrived (a counter)
        self._arrivals = itertools.count()
        self._component_state: dict[str, str] = {}          # component name → the widget id its value went to
        self.page_hash = ""                            # the page this tab is on (the server names it)
        self._fragments: dict[str, asyncio.Task] = {}
        self._listeners: list[Callable[[str], bool]] = []
        self._finished = asyncio.Event()
        self._ws = None
        self._reader: asyncio.Task | None = None
        self.errors: list[str] = []
        self.texts: collections.deque[str] = collections.deque(maxlen=6)   # the last texts read (for a report)
        self.events: collections.deque[str] = collections.deque(maxlen=40)  # what was sent and received (a report)

    # --- the connection ----------------------------------------------------------------------
    async def open(self, page: str = "") -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(self.ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=120,
                                 additional_headers={"Cookie": self.cookie}, ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        await self._rerun(page_name=page)

    async def close(self) -> None:
        for t in self._fragments.values():
            t.cancel()
        if self._reader:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()

    async def _send(self, msg: BackMsg) -> None:
        await self._ws.send(msg.SerializeToString())

    async def _rerun(self, *, page_name: str = "", fragment_id: str = "", auto: bool = False,
                     triggers: tuple[str, ...] = (), wait: bool = True) -> None:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = ""
        cs.page_script_hash = self.page_hash
        cs.page_name = page_name
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        cs.widget_states.widgets.extend(self.widgets.values())
        for wid in triggers:
            w = cs.widget_states.widgets.add()
            w.id = wid
            w.trigger_value = True
        if not fragment_id:
            # A full run starts: the frontend forgets the old page's fragment timers until the server names them again.
            for t in self._fragments.values():
                t.cancel()
            self._fragments.clear()
        self._finished.clear()
        self.events.append(f"{time.time():.2f} sent rerun fragment={fragment_id[:6]!r} page={page_name!r} "
                           f"triggers={len(triggers)}")
        await self._send(msg)
        if wait:
            await self.wait_finished()

    async def wait_finished(self, timeout: float = 180) -> None:
        await asyncio.wait_for(self._finished.wait(), timeout)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                fm = ForwardMsg()
                fm.ParseFromString(raw)
                self._handle(fm)
        except asyncio.CancelledError:
            raise
        except Exception as err:    # the server went away: the bench reports it
            self.errors.append(repr(err))

    def _handle(self, fm: ForwardMsg) -> None:
        kind = fm.WhichOneof("type")
        if kind != "delta":
            detail = fm.script_finished if kind == "script_finished" else ""
            self.events.append(f"{time.time():.2f} got {kind} {detail}")
        if kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
            el = fm.delta.new_element
            which = el.WhichOneof("type")
            proto = getattr(el, which) if which else None
            # a custom component (Components v2) has no label: it is found by its name
            label = proto.component_name if which == "bidi_component" else getattr(proto, "label", None)
            if isinstance(label, str) and label:
                self.by_label[(which, label)] = proto
                self.seen[(which, label)] = next(self._arrivals)
            # Only what a student reads (charts and tables are not searched: parsing them would cost this
            # process, on the server's cores, more than the server spent making them).
            text = str(getattr(proto, "body", "") or getattr(proto, "text", "")
                       or getattr(proto, "message", "")) if which in READABLE else ""
            if text.strip():
                self.texts.append(text.strip()[:160])
            for listener in list(self._listeners):
                if listener(text):
                    self._listeners.remove(listener)
        elif kind == "navigation":
            self.page_hash = fm.navigation.page_script_hash
        elif kind == "auto_rerun":
            fid, every = fm.auto_rerun.fragment_id, fm.auto_rerun.interval
            old = self._fragments.pop(fid, None)
            if old:
                old.cancel()
            self._fragments[fid] = asyncio.create_task(self._tick(fid, every))
        elif kind == "stop_auto_rerun":
            for t in self._fragments.values():
                t.cancel()
            self._fragments.clear()
        elif kind == "script_finished" and fm.script_finished in FINISHED:
            self._finished.set()

    async def _tick(self, fragment_id: str, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self._rerun(fragment_id=fragment_id, auto=True, wait=False)
            except Exception as err:
                self.errors.append(repr(err))
                return

    # --- what a student does -----------------------------------------------------------------
    def widget_id(self, kind: str, label: str) -> str:
        proto = self.by_label.get((kind, label))
        if proto is None:
            known = sorted(lbl for k, lbl in self.by_label if k == kind)
            raise KeyError(f"no {kind} labelled {label!r} on the page (there are: {known})")
        return proto.id

    async def set_number(self, label: str, value: int) -> None:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        proto = self.by_label[("number_input", label)]
        state = WidgetState(id=proto.id)
        if proto.data_type == proto.INT:
            state.int_value = int(value)
        else:
            state.double_value = float(value)
        self.widgets[proto.id] = state
        await self._rerun()

    def newest_label(self, kind: str, prefix: str) -> str:
        """The label starting with `prefix` of the element of this kind that arrived last (a button whose label
        changes from run to run, such as "Add this circle")."""
        found = [(n, lbl) for (k, lbl), n in self.seen.items() if k == kind and lbl.startswith(prefix)]
        if not found:
            raise KeyError(f"no {kind} labelled {prefix!r}… on the page")
        return max(found)[1]

    async def set_component(self, name: str, state: dict, wait: bool = True) -> None:
        """A custom component (Components v2, e.g. the drawing canvas) sends `state` as its value, as its
        JavaScript does (`setStateValue`): the widget is the latest instance of the component `name`. The value
        a previous instance held (a canvas with an older key) is forgotten, as the frontend forgets a widget
        that is no longer on the page."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        proto = self.by_label[("bidi_component", name)]
        old = self._component_state.get(name)
        if old and old != proto.id:
            self.widgets.pop(old, None)
        self._component_state[name] = proto.id
        self.widgets[proto.id] = WidgetState(id=proto.id, json_value=json.dumps(state))
        await self._rerun(wait=wait)

    def forget_component(self, name: str) -> None:
        """The component instance is gone from the page (a new key replaced it): its value is no longer sent."""
        old = self._component_state.pop(name, None)
        if old:
            self.widgets.pop(old, None)

    async def press(self, label: str, wait: bool = False) -> None:
        await self._rerun(triggers=(self.widget_id("button", label),), wait=wait)

    async def press_and_wait(self, label: str, pattern: re.Pattern, timeout: float = 120) -> float:
        """Press a button; seconds until an element whose text matches `pattern` arrives."""
        waiting = asyncio.create_task(self.wait_for_text(pattern, timeout))
        await asyncio.sleep(0)       # the listener is in place before the press is sent
        t0 = time.perf_counter()
        await self.press(label)
        await waiting
        return time.perf_counter() - t0

    async def wait_for_text(self, pattern: re.Pattern, timeout: float = 120) -> float:
        """Seconds until an element whose text matches `pattern` arrives."""
        t0 = time.perf_counter()
        got = asyncio.Event()

        def listener(text: str) -> bool:
            if pattern.search(text):
                got.set()
                return True
            return False

        self._listeners.append(listener)
        try:
            await asyncio.wait_for(got.wait(), timeout)
        finally:
            if listener in self._listeners:
                self._listeners.remove(listener)
        return time.perf_counter() - t0
