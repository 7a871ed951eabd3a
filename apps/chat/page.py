"""Streamlit page: chat with an instruct model, streamed, history per browser session.

Widgets only: every reply comes from :class:`quintet.apps.chat.ChatSession`. The session (the
history) lives in ``st.session_state``, so each browser tab has its own conversation; the
model's weights are shared by every session through :func:`quintet.apps.ui.cached_generator`, and a
reply streams under the model's lock (:func:`quintet.apps.ui.waiting_for`), so two sessions never
decode on one model at once.

Stop: pressing "Stop" reruns the page, which interrupts ``st.write_stream``; the abandoned
stream cancels itself and the text written so far stays in the history, marked "stopped".
The Stop row sticks to the top of the page, so it stays in view under a long reply. Stop
pressed while the reply still waits for the model (another session is using it) keeps the
question on the page with a notice: it never reached the model, so it is not in the history
the model sees or the saved file.

Streamlit's own Stop (the header's, while a run is going) ends the run where it is and
starts no other: every Streamlit call of the stopped run raises again, session state access
included, and nothing redraws the page. So the run that writes a reply ends it in a
``finally`` that touches only plain objects (the engine stops decoding; the text so far
joins the history with its "stopped" caption), and it draws a fragment that ticks each
second while the reply is written: its first tick after the reply ended reruns the page,
which draws the caption and Stop disabled, and not the fragment, so the ticking stops.

The caption under a reply counts from the moment it was sent: "waited 28.6 s for the model,
first token after 29.0 s" when another session held the model, not just the model's own
0.37 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import streamlit as st

from quintet.apps.chat import ChatReply, ChatSession, ChatStream
from quintet.apps.chat.api import STRATEGIES
from quintet.apps.chat.settings import CHAT_PAGE_DECODE
from quintet.apps.ui import (
    cached_generator,
    decode_controls,
    engine_picker,
    guarded,
    model_picker,
    waiting_for,
)
from quintet.core.defaults import default_model

KEY = "chat-session"
DEFAULT_DECODE_NOTE = (
    "Default: greedy with repetition penalty 1.1. Plain greedy made the small packaged model "
    "loop (2 of 4 travel answers); the penalty stopped it. Set the penalty to 1 for plain "
    "greedy."
)
WAIT_SHOWN_S = 0.1  # a shorter wait for the model is not worth a word in the caption
PENDING_SYSTEM = "chat-system-loaded"  # a loaded conversation's system prompt, for the box
STATS = "chat-stats"  # {index of an assistant message in session.messages: caption}
NOTICES = "chat-notices"  # {index of an assistant message: what left the model's view}
WRITING = "chat-writing"  # the Writing of the last reply a run started
PENDING = "chat-pending"  # a question sent but not yet in the history (waiting for the model)
REDRAW_EVERY_S = 1.0  # how soon the page redraws itself after Streamlit's header Stop
UNSENT = "chat-unsent"  # [(index in session.messages it would have had, question)]
UNSENT_NOTICE = (
    "Stopped while waiting for the model: this question was not sent, so it has no reply and "
    "the model does not see it. Send it again for a reply."
)
# Keeps the Reset / Save / Stop row at the top of the view while a long reply scrolls the
# page (the Stop button went out of view, 295 px above the top).
# The sticky box is the container's wrapper: the container alone is as tall as its own box,
# which leaves a sticky element no room to move.
STICKY_CSS = """<style>
div:has(> .st-key-chat-controls) { position: sticky; top: 3.75rem; z-index: 100; }
.st-key-chat-controls { background: var(--st-background-color, white); padding: 0.25rem 0; }
</style>"""


@dataclass
class Writing:
    """A reply a run writes, as the session state keeps it for the runs after.

    Plain attributes: the run that writes the reply sets them even after Streamlit's header
    Stop, when the session state can no longer be read or written in that run.
    """

    waited: float = 0.0  # seconds waited for the model
    first_token_s: float | None = None  # seconds from sending to the first text
    ended: bool = False  # the run is over; the reply, if any, is in the history with its caption

    @property
    def timing(self) -> tuple[float, float | None]:
        return self.waited, self.first_token_s


def caption(reply: ChatReply, timing: tuple[float, float | None] | None = None) -> str:
    """One line under a reply: tokens, tokens/s, time to first token, how it ended.

    ``timing``: (seconds waited for the model, seconds from sending to the first token) as the
    page measured them; the user's wait, where the reply's own time to first token counts
    from when the model started on it.
    """
    parts = [f"{reply.num_tokens} tokens", f"{reply.tokens_per_s:.1f} tokens/s"]
    waited, first = timing if timing is not None else (0.0, None)
    if first is None:
        first = reply.time_to_first_token_s
    if waited >= WAIT_SHOWN_S:
        parts.append(f"waited {waited:.1f} s for the model")
    if first is not None:
        parts.append(f"first token after {first:.2f} s")
    if reply.backend:
        parts.append(f"on {reply.backend}")
    if reply.cancelled:
        parts.append("stopped")
    elif reply.finish_reason == "length":
        parts.append("cut at the max new tokens")
    return " · ".join(parts)


def _session(
    model: str, system: str, strategy: str, window: int, backend: str = "auto"
) -> ChatSession:
    """This browser session's ChatSession, rebuilt (keeping the history) when the model or
    the context settings change."""
    wanted = (model, strategy, window or None, backend)
    session: ChatSession | None = st.session_state.get(KEY)
    if session is None or st.session_state.get(f"{KEY}-settings") != wanted:
        generator = cached_generator(model, backend)
        options = {"context_strategy": strategy, "max_context_tokens": window or None}
        session = (
            ChatSession.load(session.to_json(), generator, **options)
            if session is not None
            else ChatSession(generator, system or None, **options)
        )
        st.session_state[KEY] = session
        st.session_state[f"{KEY}-settings"] = wanted
    session.set_system_prompt(system or None)
    # A reply the page's Stop interrupted (its run may still be ending in its own thread):
    # keep its text, give it its caption, with its timing (once: a later reply has its own).
    writing: Writing | None = st.session_state.pop(WRITING, None)
    stats = st.session_state.setdefault(STATS, {})
    notices = st.session_state.setdefault(NOTICES, {})
    _end_reply(session, session.streaming, writing, stats, notices)
    return session


def _end_reply(
    session: ChatSession,
    stream: ChatStream | None,
    writing: Writing | None,
    stats: dict[int, str],
    notices: dict[int, str],
) -> None:
    """Stop ``stream`` if it still runs (the engine stops after the current token; the text so
    far joins the history, ``cancelled``) and give the last reply its caption.

    No Streamlit call: this runs in the ``finally`` of a run that Streamlit's header Stop
    ended, where any would raise again. ``stats`` and ``notices`` are the session state's own
    dicts, so what is written here is there on the next run.
    """
    if stream is not None and session.streaming is stream:
        stream.cancel()
        stream.result  # noqa: B018 - waits for the end; the reply joins the history
    last = len(session.messages) - 1
    # The last reply, unless a newer one streams now (its own run captions it): a stopped
    # run never reached the caption line of its reply.
    if session.streaming is None and session.last_reply is not None and last not in stats:
        stats[last] = caption(session.last_reply, writing.timing if writing else None)
        if session.last_reply.context_notice:
            notices[last] = session.last_reply.context_notice


@st.fragment(run_every=REDRAW_EVERY_S)
def _redraw_when_ended(writing: Writing) -> None:
    """Rerun the page once the run writing a reply is over without having redrawn it.

    Drawn only by the run that writes a reply, so it ticks only then; while that run goes
    on, its ticks wait for it. A run that ends normally reruns the page itself; one that
    Streamlit's header Stop ended cannot, and this is what redraws the page then.
    """
    if writing.ended:
        st.rerun()


def _timed(stream: Iterator[str], sent: float, writing: Writing) -> Iterator[str]:
    """``stream``, noting the seconds from ``sent`` to its first text in ``writing``."""
    first = True
    deltas = iter(stream)
    try:
        for delta in deltas:
            if first and delta:
                writing.first_token_s = time.perf_counter() - sent
                first = False
            yield delta
    finally:  # an interrupted page stops reading this; the reply's stream must stop too
        deltas.close()


def _keep_unsent(session: ChatSession) -> list[tuple[int, str]]:
    """This session's unsent questions; a question still pending when this run starts was
    stopped before it reached the history (Stop while waiting): keep it, with its place."""
    unsent: list[tuple[int, str]] = st.session_state.setdefault(UNSENT, [])
    pending = st.session_state.pop(PENDING, None)
    if pending is not None:
        unsent.append((len(session.messages), pending))
    return unsent


def _load_upload(upload, model: str, strategy: str, window: int, backend: str = "auto") -> None:
    """Replace the conversation by an uploaded JSON file (once per upload)."""
    if upload is None or st.session_state.get(f"{KEY}-upload") == upload.file_id:
        return
    st.session_state[f"{KEY}-upload"] = upload.file_id
    session = ChatSession.load(
        upload.getvalue().decode("utf-8", errors="replace"),
        cached_generator(model, backend),
        context_strategy=strategy,
        max_context_tokens=window or None,
    )
    st.session_state[KEY] = session
    st.session_state[f"{KEY}-settings"] = (model, strategy, window or None, backend)
    st.session_state[STATS] = {}
    st.session_state[NOTICES] = {}
    # The system prompt box already exists in this run and cannot be changed now: keep the
    # loaded prompt aside and rerun; the next run puts it in the box before drawing it (else
    # the old box text would overwrite the loaded prompt).
    st.session_state[PENDING_SYSTEM] = session.system_prompt or ""
    st.rerun()


def render() -> None:
    st.title("Chat")
    st.caption("Streams from an instruct model with its own chat template; history per tab.")
    if PENDING_SYSTEM in st.session_state:
        st.session_state["chat-system"] = st.session_state.pop(PENDING_SYSTEM)
    with st.sidebar:
        model = model_picker("chat", key="chat-model")
        system = st.text_area(
            "System prompt",
            key="chat-system",
            placeholder="e.g. You are a concise assistant.",
            help="Sent first with every message; never dropped when the window fills up.",
        )
        decode = decode_controls(
            key="chat-decode", allow_beams=False, max_new_tokens=256, defaults=CHAT_PAGE_DECODE
        )
        st.caption(DEFAULT_DECODE_NOTE)
        backend = engine_picker("chat-engine")
        with st.expander("Context window"):
            strategy = st.radio(
                "When the conversation no longer fits",
                STRATEGIES,
                key="chat-strategy",
                format_func=lambda s: {
                    "drop": "drop the oldest turns",
                    "summarize": "summarize them",
                }[s],  # fmt: skip
            )
            window = int(
                st.number_input(
                    "Window (tokens, 0 = the model's)", 0, 131072, 0, 256, key="chat-window"
                )
            )
        upload = st.file_uploader("Load a conversation (JSON)", type=["json"], key="chat-upload")
    with guarded("loading the chat model", task="chat"):
        model = model or default_model("chat").name
        _load_upload(upload, model, strategy, window, backend)
        _session(model, system, strategy, window, backend)
    if KEY not in st.session_state:
        return
    session = st.session_state[KEY]
    stats: dict[int, str] = st.session_state.setdefault(STATS, {})
    notices: dict[int, str] = st.session_state.setdefault(NOTICES, {})

    unsent = _keep_unsent(session)
    st.html(STICKY_CSS)
    controls = st.container(key="chat-controls")
    left, middle, right = controls.columns(3)
    if left.button("Reset", key="chat-reset", icon=":material/restart_alt:"):
        session.reset()
        stats.clear()
        notices.clear()
        unsent.clear()
    middle.download_button(
        "Save (JSON)",
        session.to_json(),
        file_name="conversation.json",
        mime="application/json",
        key="chat-save",
        icon=":material/download:",
    )
    max_new = decode.get("max_new_tokens", 0)
    window_too_small = bool(window) and window <= max_new
    # Clickable only in the run that writes a reply (a message was just sent and fits): the
    # button is drawn before the reply starts, and clicking it is what interrupts that run.
    # The run that finishes a reply reruns the page, so Stop is disabled again at once.
    sending = bool(st.session_state.get("chat-input")) and not window_too_small
    right.button("Stop", key="chat-stop", icon=":material/stop_circle:", disabled=not sending,
                 help="Stop the reply being written; the text so far is kept.")  # fmt: skip
    if session.hidden_messages:
        what = "summarized" if session.summary else "dropped"
        st.info(
            f"The model no longer sees the {session.hidden_messages} oldest messages "
            f"({what} to fit the context window); they stay here and in the saved file.",
            icon=":material/info:",
        )

    for index, message in enumerate([*session.messages, None]):
        for _, question in (entry for entry in unsent if entry[0] == index):
            with st.chat_message("user"):
                st.markdown(question)
                st.info(UNSENT_NOTICE, icon=":material/info:")
        if message is None or message["role"] == "system":
            continue
        with st.chat_message(message["role"]):
            st.markdown(message["content"])
            if index in notices:
                st.info(notices[index], icon=":material/info:")
            if index in stats:
                st.caption(stats[index])

    prompt = st.chat_input("Message", key="chat-input")
    if prompt and window_too_small:
        st.error(
            f"The context window ({window} tokens) must be larger than Max new tokens "
            f"({max_new}): the reply alone takes that much. Raise the window in the sidebar, "
            "lower Max new tokens, or set the window to 0 for the model's own."
        )
    elif prompt and _write_reply(session, prompt, decode, stats, notices):
        st.rerun()  # redraw from the history: the reply, its caption, Stop disabled


def _write_reply(
    session: ChatSession,
    prompt: str,
    decode: dict,
    stats: dict[int, str],
    notices: dict[int, str],
) -> bool:
    """Send ``prompt`` and stream the reply; True once it is in the history with its caption.

    However the run ends (the reply's end, an error, the page's Stop or Streamlit's header
    Stop), the ``finally`` stops the reply's decoding and keeps its text with its caption.
    """
    st.session_state[PENDING] = prompt  # until the question is in the history
    writing = Writing()
    st.session_state[WRITING] = writing
    stream: ChatStream | None = None
    try:
        _redraw_when_ended(writing)
        with st.chat_message("user"):
            st.markdown(prompt)
        with st.chat_message("assistant"), guarded("writing the reply", task="chat"):
            sent = time.perf_counter()
            with waiting_for(session.model_name):
                writing.waited = time.perf_counter() - sent
                # The last Streamlit call before the question joins the history: a stop
                # raised here leaves it pending (not sent); none can come between the two.
                del st.session_state[PENDING]
                stream = session.stream(prompt, **decode)
                if stream.context_notice:
                    st.info(stream.context_notice, icon=":material/info:")
                st.write_stream(_timed(stream, sent, writing))
            return True
        return False
    finally:
        try:
            _end_reply(session, stream, writing, stats, notices)
        finally:  # the page redraws itself now, whatever happened
            writing.ended = True


render()
