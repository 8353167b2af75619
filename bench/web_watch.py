"""Keeps sprocketd's dashboard open in headless Chromium (Debian's chromium
and chromium-driver, through selenium) for bench/web.sh, and proves it was
live while the load ran.

    python3 bench/web_watch.py --url http://127.0.0.1:PORT/

Prints `LIVE` once the page says it is live (its server-sent-events stream
delivers snapshots), then leaves the page alone and waits for a line on
stdin (`STOP`, or end of input). Then it prints one JSON line:
`events` (snapshots the page's stream delivered while the load ran),
`max_submitted_rate`, `max_completed_rate`, `max_queued` (the largest
numbers those snapshots carried), `live` (the page's own indicator at the
end), `function_rows` (rows in the page's functions table) and `seconds`.
bench/web.sh refuses a watched run whose page saw no snapshots or no load.

A failure raises: non-zero exit with the reason on stderr.
"""

import argparse
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

# Runs in the page before its own script: counts the snapshots every
# EventSource the page opens receives, and keeps the largest rates and
# queue length they carried. The page's own handler is untouched.
COUNT_EVENTS = """
(() => {
  const seen = { events: 0, streams: 0, submitted: 0, completed: 0, queued: 0 };
  window.__benchSeen = seen;
  const Original = window.EventSource;
  window.EventSource = class extends Original {
    constructor(url, options) {
      super(url, options);
      seen.streams += 1;
      this.addEventListener("message", (event) => {
        seen.events += 1;
        try {
          const s = JSON.parse(event.data);
          const rates = s.rates || {};
          seen.submitted = Math.max(seen.submitted, rates.submitted || 0);
          seen.completed = Math.max(seen.completed, rates.completed || 0);
          seen.queued = Math.max(seen.queued, s.queued || 0);
        } catch (_) {}
      });
    }
  };
})();
"""


def wait_until(what, check, seconds):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # the page is still building the element
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = p.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1100", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update",
                 # A headless page counts as hidden; without these its timers
                 # would be slowed and it would not draw like a visible tab.
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_EVENTS})
        driver.get(args.url)
        wait_until("the page's live indicator", lambda: driver.find_element(By.ID, "live").text == "live", 30)
        wait_until("a first snapshot", lambda: driver.execute_script("return window.__benchSeen.events") > 0, 10)
        # Count from here: what the page received while the load ran.
        driver.execute_script(
            "const s = window.__benchSeen; s.events = 0; s.submitted = 0; s.completed = 0; s.queued = 0;")
        started = time.monotonic()
        print("LIVE", flush=True)
        sys.stdin.readline()
        seen = driver.execute_script("return window.__benchSeen")
        live = driver.find_element(By.ID, "live").text
        rows = len(driver.find_elements(By.CSS_SELECTOR, "#fn-table tbody tr"))
        print(json.dumps({
            "events": seen["events"],
            "streams": seen["streams"],
            "max_submitted_rate": seen["submitted"],
            "max_completed_rate": seen["completed"],
            "max_queued": seen["queued"],
            "live": live,
            "function_rows": rows,
            "seconds": round(time.monotonic() - started, 1),
        }), flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
