"""Drag and drop on the composer: an image dropped on the Images box is chosen, shown at once,
its alt text field takes the focus, and the post goes out with the image and that alt text."""

from __future__ import annotations

import base64
import time
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.test_delegated_posting import sign_in
from tests.browser.test_group_threads import statuses, timeline
from tests.support import images
from tests.support.live import LiveServer

TEXT = "Backstage before the keynote"
ALT = "Two technicians at the mixing desk, the stage lit blue behind them"

#: Drops `files` (name, MIME type, base64 bytes) on the compose form's Images box, as a browser
#: does when files are dragged there from the desktop.
DROP = """([files]) => {
  const dropped = new DataTransfer();
  for (const [name, type, data] of files) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    dropped.items.add(new File([bytes], name, { type }));
  }
  const box = document.querySelector("fieldset.images");
  const how = { dataTransfer: dropped, bubbles: true, cancelable: true };
  box.dispatchEvent(new DragEvent("dragover", how));
  box.dispatchEvent(new DragEvent("drop", how));
}"""


def test_an_image_dropped_on_the_composer_goes_out_with_its_alt_text(
    browser: Browser, live_server: LiveServer, screenshots: Path
) -> None:
    world = live_server.world
    world.approve_notice(world.open_window())
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server, world.writer_a.email)
    page.goto(f"{live_server.url}/compose?account={world.account.id}")
    expect(page.locator(".drop-hint")).to_have_text("Drop images here, or choose them below.")
    page.get_by_label("Post text").fill(TEXT)

    photo = base64.b64encode(images.png(width=40, height=30)).decode()
    notes = base64.b64encode(b"not an image").decode()
    page.evaluate(DROP, [[("desk.png", "image/png", photo), ("notes.txt", "text/plain", notes)]])

    # The image filled the first slot (a text file is not an image: left out), is shown, and
    # its alt text field has the focus so the writer describes it next.
    expect(page.locator("img.thumb.chosen")).to_have_count(1)
    expect(page.locator("#image_1_alt")).to_be_focused()
    expect(page.get_by_role("status").filter(has_text="image added")).to_contain_text(
        "1 image added. Describe each one in its alt text field."
    )
    assert page.locator("#image_1").evaluate("input => input.files[0].name") == "desk.png"
    assert page.locator("#image_2").evaluate("input => input.files.length") == 0
    page.keyboard.type(ALT)
    page.screenshot(path=screenshots / "compose-drop.png", full_page=True)

    page.get_by_role("button", name="Publish now").click()
    expect(page.get_by_role("status").first).to_contain_text("Submitted")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = statuses(timeline(live_server, "avery"))
        if any(TEXT in text for text in found):
            break
        time.sleep(0.3)
    [article] = [html for text, html in found.items() if TEXT in text]
    assert f'alt="{ALT}"' in article
