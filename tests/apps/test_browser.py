"""The suite in a real browser: `streamlit run apps/home.py` driven by headless Chromium.

Opens every page, types into the translation and chat pages on the real offline model
(SmolLM2-135M-Instruct) and checks that output appears, and saves a screenshot of every page
to ``artifacts/screenshots/``. Needs Debian's ``chromium`` and ``chromium-driver`` (``make
test`` installs them); skipped where they are missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from quintet.core.store import ModelStore

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# url path, screenshot name; the same order as the navigation.
PAGES = [
    ("", "home"),
    ("translation", "translation"),
    ("summarization", "summarization"),
    ("qa", "qa"),
    ("classification", "classification"),
    ("chat", "chat"),
    ("evaluation", "evaluation"),
    ("finetune", "finetune"),
    ("models", "models"),
]
# The browser needs a bit longer than usual: two CPU cores, model loads on first use.
TIMEOUT = 180

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()),
    reason="needs Debian's chromium and chromium-driver: make test installs them",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_process(real_store: ModelStore, tmp_path_factory) -> Iterator[tuple[str, int]]:
    """The suite served by `streamlit run` on a free port; yields its URL and process id."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = {**os.environ, "QUINTET_HOME": str(real_store.home),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "apps/ui/entry/quintet_ui.py",
             "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server(server_process: tuple[str, int]) -> str:
    """The URL of the served suite."""
    return server_process[0]


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1440,1000",
                 "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver, condition: Callable[[object], object], timeout: float = TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.3).until(condition)


def script_state(driver) -> str:
    from selenium.webdriver.common.by import By

    apps = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"]')
    return apps[0].get_attribute("data-test-script-state") if apps else ""


def settle(driver, quiet_s: float = 1.5, timeout: float = TIMEOUT) -> None:
    """Wait until the script has run and stayed idle for ``quiet_s`` (fragments may tick)."""
    deadline, idle_since = time.time() + timeout, None
    while time.time() < deadline:
        state = script_state(driver)
        if state in ("notRunning", "compilationError"):
            idle_since = idle_since or time.time()
            if time.time() - idle_since >= quiet_s:
                return
        else:
            idle_since = None
        time.sleep(0.2)
    raise AssertionError(f"the page kept running for {timeout} s")


def page_problems(driver) -> list[str]:
    """Exceptions and error boxes on the page (text), if any."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(
        By.CSS_SELECTOR,
        '[data-testid="stException"], [data-testid="stAlertContentError"], '
        '[data-testid="stDialog"]',  # e.g. Streamlit's "Page not found"
    )
    return [element.text for element in found]


def open_page(driver, url: str, path: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/{path}")
    wait_until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "h1"))
    settle(driver)


def main_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text


def set_number(driver, label: str, value: int) -> bool:
    """Type ``value`` into the number input labelled ``label``; False when there is none."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    inputs = [
        box
        for box in driver.find_elements(By.CSS_SELECTOR, f'input[aria-label="{label}"]')
        if box.is_displayed() and box.is_enabled()
    ]
    if not inputs:
        return False  # none, or folded in a closed expander: keep the page's default
    box = inputs[0]
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.ENTER)
    settle(driver)
    return True


def test_every_page_opens_and_is_screenshotted(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    for path, name in PAGES:
        open_page(browser, server, path)
        assert not page_problems(browser), f"/{path}: {page_problems(browser)}"
        title = browser.find_element(By.CSS_SELECTOR, "h1").text
        assert title, f"/{path} has no title"
        browser.save_screenshot(str(SHOTS / f"{name}.png"))
        assert (SHOTS / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    # The evaluation page's report viewer (the shipped example reports, or this store's).
    open_page(browser, server, "evaluation")
    tab = next(t for t in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stTab"]')
               if t.text.strip() == "Reports")  # fmt: skip
    tab.click()
    settle(browser)
    assert not page_problems(browser), page_problems(browser)
    browser.save_screenshot(str(SHOTS / "evaluation-report.png"))
    # Home links to every page from its navigation.
    open_page(browser, server, "")
    nav = browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebarNav"]').text
    for label in ("Translation", "Chat", "Evaluation", "Fine-tuning", "Models"):
        assert label in nav


@pytest.mark.parametrize("task", ["qa", "classification"])
def test_prefilled_pages_answer(server: str, browser, task: str) -> None:
    # The QA and classification pages open with an example filled in: run it.
    from selenium.webdriver.common.by import By

    open_page(browser, server, task)
    before = main_text(browser)
    browser.find_element(By.CSS_SELECTOR, 'button[data-testid="stBaseButton-primary"]').click()
    wait_until(browser, lambda d: main_text(d) != before or page_problems(d))
    settle(browser)
    assert not page_problems(browser), page_problems(browser)
    assert len(main_text(browser)) > len(before), f"no {task} output appeared"
    browser.save_screenshot(str(SHOTS / f"{task}.png"))


def test_translation_page_translates_typed_text(server: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, server, "translation")
    set_number(browser, "Max new tokens", 24)
    area = browser.find_element(By.CSS_SELECTOR, '[data-testid="stTextArea"] textarea')
    area.send_keys(Keys.CONTROL, "a")
    area.send_keys("Good morning, my friend.")
    area.send_keys(Keys.CONTROL, Keys.ENTER)  # commit the text area
    settle(browser)
    before = main_text(browser)
    button = browser.find_element(By.CSS_SELECTOR, 'button[data-testid="stBaseButton-primary"]')
    button.click()
    wait_until(browser, lambda d: main_text(d) != before or page_problems(d))
    settle(browser)
    assert not page_problems(browser), page_problems(browser)
    added = [line for line in main_text(browser).splitlines() if line not in before.splitlines()]
    assert any(len(line.strip()) > 2 for line in added), "no translation appeared"
    browser.save_screenshot(str(SHOTS / "translation.png"))


def test_chat_page_answers(server: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, server, "chat")
    set_number(browser, "Max new tokens", 32)
    box = wait_until(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stChatInput"] textarea')
    )[0]
    box.send_keys("What is the capital of France?", Keys.ENTER)

    def answered(driver) -> bool:
        messages = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')
        return len(messages) >= 2 and len(messages[-1].text.strip()) > 0

    wait_until(browser, lambda d: answered(d) or page_problems(d))
    settle(browser)
    assert not page_problems(browser), page_problems(browser)
    messages = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')
    assert "capital of France" in messages[-2].text
    assert messages[-1].text.strip()
    # Once the reply is written, Stop is off again without any further action (it stayed
    # clickable until the next click) and the reply has its caption.
    stop = browser.find_element(By.CSS_SELECTOR, ".st-key-chat-stop button")
    assert not stop.is_enabled()
    assert "tokens/s" in messages[-1].text
    browser.save_screenshot(str(SHOTS / "chat.png"))


@pytest.mark.slow  # a reply long enough to stop (about 25 s here)
def test_chat_stop_marks_the_reply_stopped_at_once(server: str, browser) -> None:
    """Stop while a reply streams: the reply keeps its text and says "stopped" without any
    further action (it used to appear only after the next click)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, server, "chat")
    set_number(browser, "Max new tokens", 512)
    stop = browser.find_element(By.CSS_SELECTOR, ".st-key-chat-stop button")
    assert not stop.is_enabled()  # nothing runs
    box = browser.find_element(By.CSS_SELECTOR, '[data-testid="stChatInput"] textarea')
    box.send_keys("Tell me a long story about a dragon and a knight.", Keys.ENTER)

    def streaming(driver) -> bool:
        messages = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')
        return len(messages) >= 2 and len(messages[-1].text.split()) >= 5

    wait_until(browser, lambda d: streaming(d) or page_problems(d))
    browser.find_element(By.CSS_SELECTOR, ".st-key-chat-stop button").click()
    settle(browser, quiet_s=3.0)
    assert not page_problems(browser), page_problems(browser)
    messages = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')
    assert "stopped" in messages[-1].text, messages[-1].text


# Counts the messages the page sends its server (a rerun is one).
COUNT_SENDS = """
window.__quintetSends = 0;
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  window.__quintetSends += 1; return send.call(this, data);
};
"""


def pick(driver, key: str, option: str) -> None:
    """Choose ``option`` in the select box of key ``key``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f".st-key-{key} input")
    box.click()
    box.send_keys(option, Keys.ENTER)
    settle(driver)
    assert (
        driver.find_element(By.CSS_SELECTOR, f".st-key-{key} input").get_attribute("value")
        == option
    )


def cpu_seconds(pid: int) -> float:
    """CPU time process ``pid`` has used so far, all its threads."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@pytest.mark.slow  # a reply long enough to stop (about 25 s here)
def test_chat_header_stop_keeps_the_reply_and_stops_decoding(server_process, browser) -> None:
    """Streamlit's own Stop (the header's, while the page runs) in the middle of a reply: the
    reply keeps its text and says "stopped", the page's Stop is disabled, without any further
    action, and the model stops decoding (the page stayed as it was, with no caption and Stop
    enabled, until the next click)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, pid = server_process
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_SENDS})
    open_page(browser, url, "chat")
    set_number(browser, "Max new tokens", 512)
    # The reply decodes on the int8 engine's scheduler (the tests pin auto to transformers):
    # plain greedy, the engine named.
    browser.find_element(By.CSS_SELECTOR, ".st-key-chat-decode-rep input").send_keys(Keys.HOME)
    settle(browser)
    pick(browser, "chat-engine", "onnxruntime-genai")
    box = browser.find_element(By.CSS_SELECTOR, '[data-testid="stChatInput"] textarea')
    box.send_keys("Tell me a long story about a dragon and a knight.", Keys.ENTER)

    def streaming(driver) -> bool:
        messages = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')
        return len(messages) >= 2 and len(messages[-1].text.split()) >= 5

    def header_stop(driver) -> list:
        buttons = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"] button')
        return [button for button in buttons if button.text.strip() == "Stop"]

    wait_until(browser, lambda d: streaming(d) or page_problems(d))
    assert not page_problems(browser), page_problems(browser)
    wait_until(browser, header_stop)[0].click()

    def last_reply(driver) -> str:
        return driver.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')[-1].text

    # Without touching the page again: the reply gets its caption, Stop goes off.
    wait_until(browser, lambda d: "stopped" in last_reply(d) or page_problems(d), timeout=30)
    settle(browser, quiet_s=2.0)
    assert not page_problems(browser), page_problems(browser)
    reply = last_reply(browser)
    assert "stopped" in reply and "tokens/s" in reply, reply
    assert len(reply.split()) >= 5, reply  # the text written so far is kept
    assert "on onnxruntime-genai" in reply, reply
    # The engine's count when the request ended: a few tokens, not the 512 allowed.
    assert int(reply.split(" tokens · ")[0].split()[-1]) < 100, reply
    assert not browser.find_element(By.CSS_SELECTOR, ".st-key-chat-stop button").is_enabled()
    # The request no longer decodes (512 tokens would keep a core busy for many seconds):
    # the page's server idles.
    used = cpu_seconds(pid)
    time.sleep(4.0)
    used = cpu_seconds(pid) - used
    assert used < 1.0, f"the page's server used {used:.1f} s of CPU in 4 s after Stop"
    # And the page stays idle: the redraw that followed the header Stop does not repeat.
    browser.execute_script("window.__quintetSends = 0;")
    time.sleep(3.0)
    assert browser.execute_script("return window.__quintetSends;") == 0


@pytest.mark.parametrize("path", ["finetune", "evaluation"])
def test_an_idle_tab_does_not_rerun(server: str, browser, path: str) -> None:
    """Nothing runs: the page asks the server for nothing (an idle Fine-tuning tab reran every
    2 s, an idle Evaluation tab 24 times in 30 s)."""
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_SENDS})
    open_page(browser, server, path)
    settle(browser, quiet_s=2.0)
    browser.execute_script("window.__quintetSends = 0;")
    time.sleep(6.5)
    assert browser.execute_script("return window.__quintetSends;") == 0


# How far the page scrolls (its scroller is main.stMain, or the document), and scrolling to the
# end.
OVERFLOW = """
const main = document.querySelector('.stMain');
const page = document.scrollingElement;
return Math.max(main ? main.scrollHeight - main.clientHeight : 0,
                page ? page.scrollHeight - window.innerHeight : 0);
"""
SCROLL_TO_END = """
const main = document.querySelector('.stMain');
if (main) { main.scrollTop = main.scrollHeight; }
window.scrollTo(0, document.scrollingElement.scrollHeight);
"""


@pytest.mark.slow  # a reply long enough to scroll the page (about 40 s here)
def test_chat_stop_stays_in_view_during_a_long_reply(server: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(1200, 480)
    try:
        open_page(browser, server, "chat")
        set_number(browser, "Max new tokens", 300)
        # Plain greedy: the int8 engine writes the long reply faster than the penalty's engine.
        browser.find_element(By.CSS_SELECTOR, ".st-key-chat-decode-rep input").send_keys(Keys.HOME)
        settle(browser)
        box = browser.find_element(By.CSS_SELECTOR, '[data-testid="stChatInput"] textarea')
        box.send_keys("Write a long story about a dragon and a knight, in many paragraphs.",
                      Keys.ENTER)  # fmt: skip

        def long_enough(driver) -> bool:  # the page scrolls well past Stop's first place
            messages = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')
            return len(messages) >= 2 and driver.execute_script(OVERFLOW) > 250

        wait_until(browser, lambda d: long_enough(d) or page_problems(d))
        stop = browser.find_element(By.CSS_SELECTOR, ".st-key-chat-stop button")
        browser.execute_script(SCROLL_TO_END)
        time.sleep(0.5)
        top = browser.execute_script("return arguments[0].getBoundingClientRect().top;", stop)
        height = browser.execute_script("return window.innerHeight;")
        assert 0 <= top < height, f"Stop is out of view (top {top} px)"
        assert stop.is_enabled()
        stop.click()
        settle(browser, quiet_s=3.0)
        messages = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')
        assert "stopped" in messages[-1].text
    finally:
        browser.set_window_size(1440, 1000)
