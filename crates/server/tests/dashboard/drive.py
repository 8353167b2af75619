"""Drives sprocketd's dashboard in headless Chromium (Debian's chromium and
chromium-driver, through selenium), for crates/server/tests/dashboard.rs.

The Rust test starts the server and the Gearman clients; this script talks
to it over stdin/stdout: it prints a line when a stage is done and, where
the test must act next (start a worker), waits for a line on stdin. Any
failed check raises, which exits non-zero with the reason on stderr and a
screenshot `failure.png`.
"""

import argparse
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def say(line):
    print(line, flush=True)


def wait_until(what, check, seconds=20.0):
    """Polls `check` until it returns a true value; returns that value."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # the page is still building the element
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def cell(driver, function, column):
    return driver.find_element(
        By.CSS_SELECTOR, f'#fn-table tr[data-function="{function}"] td[data-col="{column}"]'
    ).text


def number(text):
    return float(text.replace(",", "")) if text not in ("", "–") else None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--shots", required=True)
    p.add_argument("--function", help="has --queued jobs and gets a worker later")
    p.add_argument("--queued", type=int)
    p.add_argument("--lookup-handle")
    p.add_argument("--lookup-unique")
    p.add_argument("--lookup-function")
    p.add_argument("--record-handle", help="an ended job with data, a warning, a lost attempt and a result")
    p.add_argument("--exception-handle", help="an ended job whose worker sent WORK_EXCEPTION")
    p.add_argument("--drop-function")
    p.add_argument("--dead-handle", help="a dead job: check the lists (retrying, dead, cron) and retry it")
    p.add_argument("--retrying-handle")
    p.add_argument("--purge-handle", help="a second dead job of the same function, purged with Purge dead")
    p.add_argument("--cron-name")
    p.add_argument("--token", help="sign in with it (Basic, as a browser does after asking) and only drop")
    p.add_argument("--history-completed", type=int, help="jobs completed in the last hour, for the history chart")
    p.add_argument("--history-exceptions", type=int, help="jobs ended with an exception in the last hour")
    p.add_argument("--history-off", action="store_true", help="the server runs with --no-history")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = p.parse_args()
    os.makedirs(args.shots, exist_ok=True)

    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1100", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update"):
        options.add_argument(flag)
    # The browser's console, to catch script errors and refused loads.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=options)
    shot = lambda name: driver.save_screenshot(os.path.join(args.shots, name))
    try:
        if args.dead_handle:
            lists(driver, args, shot)
        elif args.token:
            signed_in(driver, args, shot)
        else:
            run(driver, args, shot)
    except BaseException:
        shot("failure.png")
        raise
    finally:
        driver.quit()


def drop(driver, function, shot):
    """Drops `function` through its button and the confirmation."""
    driver.find_element(
        By.CSS_SELECTOR, f'#fn-table tr[data-function="{function}"] button[data-action="drop"]').click()
    dialog = driver.find_element(By.ID, "dialog")
    wait_until("the confirmation", lambda: dialog.is_displayed())
    assert function in dialog.text, dialog.text
    shot("drop-confirmation.png")
    driver.find_element(By.ID, "dialog-ok").click()
    wait_until("the dropped row to go", lambda: not driver.find_elements(
        By.CSS_SELECTOR, f'#fn-table tr[data-function="{function}"]'))
    assert not dialog.is_displayed(), "the dialog stayed open: " + driver.find_element(By.ID, "dialog-error").text


def records(driver, args, shot):
    """The recently ended jobs' table, and an ended job's record opened
    from it: result, data, warnings and attempts."""
    # The newest first: the worked resize jobs ended last.
    wait_until("the worked jobs in the recent table", lambda: "resize" in driver.find_element(
        By.CSS_SELECTOR, "#recent-table tbody tr").text)
    # The report jobs, by function.
    box = driver.find_element(By.ID, "recent-function")
    box.clear()
    box.send_keys("report")
    driver.find_element(By.CSS_SELECTOR, "#recent-form button[type=submit]").click()
    row_selector = f'#recent-table tr[data-handle="{args.record_handle}"]'
    row = wait_until("the report job in the recent table",
                     lambda: driver.find_element(By.CSS_SELECTOR, row_selector).text)
    assert "complete" in row and "report ready" in row, row
    table = driver.find_element(By.ID, "recent-table").text
    assert "resize" not in table, f"only the report jobs: {table}"
    exception_row = driver.find_element(By.CSS_SELECTOR, f'#recent-table tr[data-handle="{args.exception_handle}"]').text
    assert "exception" in exception_row and "out of paper" in exception_row, exception_row
    driver.execute_script("document.getElementById('recent').scrollIntoView()")
    shot("recent.png")

    # Its handle opens the record in the lookup above.
    driver.find_element(By.CSS_SELECTOR, row_selector + " button.link").click()
    result = wait_until("the record's result",
                        lambda: driver.find_element(By.CSS_SELECTOR, "#lookup-result pre.result").text)
    assert result == "report ready", result
    found = driver.find_element(By.ID, "lookup-result").text
    for expected in ("has ended", "complete", "page 1 of 2", "low toner", "flaky-worker", "worker_lost",
                     "steady-worker", "completed"):
        assert expected in found, f"{expected!r} missing from the record:\n{found}"
    attempts = driver.find_elements(By.CSS_SELECTOR, "#lookup-result table.attempts tbody tr")
    assert len(attempts) == 2, f"{len(attempts)} attempts shown"
    driver.execute_script("document.getElementById('lookup').scrollIntoView()")
    shot("record.png")

    # Filtered by state too: only the exception.
    driver.execute_script("document.getElementById('recent-state').value = 'exception'")
    driver.find_element(By.CSS_SELECTOR, "#recent-form button[type=submit]").click()
    wait_until("only the exception", lambda: [
        tr.get_attribute("data-handle") for tr in driver.find_elements(By.CSS_SELECTOR, "#recent-table tbody tr")
    ] == [args.exception_handle])
    driver.find_element(By.CSS_SELECTOR, f'#recent-table tr[data-handle="{args.exception_handle}"] button.link').click()
    error = wait_until("the exception's text",
                       lambda: driver.find_element(By.CSS_SELECTOR, "#lookup-result pre.error").text)
    assert error == "out of paper", error
    driver.execute_script("document.getElementById('recent-state').value = ''")
    box.clear()
    driver.find_element(By.CSS_SELECTOR, "#recent-form button[type=submit]").click()
    driver.execute_script("window.scrollTo(0, 0)")


def lists(driver, args, shot):
    """The retrying, dead and cron sections; Retry on the dead job."""
    driver.get(args.url)
    dead_row = f'#dead-table tr[data-handle="{args.dead_handle}"]'
    row = wait_until("the dead job", lambda: driver.find_element(By.CSS_SELECTOR, dead_row).text)
    assert "doomed" in row, row
    retrying = wait_until("the retrying job", lambda: driver.find_element(
        By.CSS_SELECTOR, f'#retrying-table tr[data-handle="{args.retrying_handle}"]').text)
    assert "retrying" in retrying and "patient" in retrying, retrying
    cron = wait_until("the cron entry", lambda: driver.find_element(
        By.CSS_SELECTOR, f'#cron-table tr[data-name="{args.cron_name}"]').text)
    assert "0 3 * * *" in cron and "Europe/Berlin" in cron and "report" in cron, cron
    assert driver.find_element(By.CSS_SELECTOR, '#dead-purge button[data-function="doomed"]').is_displayed()
    driver.execute_script("document.getElementById('retrying').scrollIntoView()")
    shot("lists-desktop.png")
    say("LISTS_OK")
    driver.find_element(By.CSS_SELECTOR, dead_row + ' button[data-action="retry"]').click()
    wait_until("the retried job to leave the dead list",
               lambda: not driver.find_elements(By.CSS_SELECTOR, dead_row))
    assert driver.find_element(By.ID, "dead-error").get_attribute("hidden") is not None, \
        driver.find_element(By.ID, "dead-error").text
    say("RETRY_OK")
    # The functions table counts the job waiting for its retry.
    wait_until("patient's Retrying column", lambda: cell(driver, "patient", "retrying") == "1")
    assert cell(driver, "doomed", "retrying") == "0", cell(driver, "doomed", "retrying")
    driver.execute_script("document.getElementById('functions').scrollIntoView()")
    shot("functions-retrying.png")
    if args.purge_handle:
        purge_dead(driver, args, shot)
    run_now(driver, args, shot)
    driver.set_window_size(390, 1600)
    driver.execute_script("document.getElementById('retrying').scrollIntoView()")
    wait_until("the cron entry on a phone", lambda: driver.find_element(
        By.CSS_SELECTOR, f'#cron-table tr[data-name="{args.cron_name}"]').is_displayed())
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width}px wide on a phone"
    shot("lists-phone.png")
    say("PHONE_OK")
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    say("CONSOLE_OK")


def history_chart(driver, args, shot):
    """The history chart: one bar slot per minute of the hour with the jobs
    ended so far, and the day and week buttons redrawing it."""
    def slot_sums():
        chart = driver.find_element(By.CSS_SELECTOR, "#history-plot svg")
        sums = driver.execute_script(
            "const slots = [...document.querySelectorAll('#history-plot g.slot')];"
            "return ['completed', 'failed', 'exceptions', 'dead'].map("
            "  k => slots.reduce((n, g) => n + Number(g.dataset[k]), 0));")
        return chart.get_attribute("data-window"), int(chart.get_attribute("data-slots")), sums

    def pick(window):
        driver.find_element(By.CSS_SELECTOR, f'#history-windows button[data-window="{window}"]').click()

    expected = [args.history_completed, 0, args.history_exceptions, 0]
    # The chart reads the history every 15 s; pressing a window button reads
    # it at once.
    for window, slots in (("week", 42), ("day", 24), ("hour", 60)):
        pick(window)
        wait_until(f"the {window} chart with the ended jobs",
                   lambda: slot_sums() == (window, slots, expected), seconds=30)
        pressed = driver.find_element(By.CSS_SELECTOR, f'#history-windows button[data-window="{window}"]')
        assert pressed.get_attribute("aria-pressed") == "true", window
        if window == "week":
            driver.execute_script("document.getElementById('history').scrollIntoView(); window.scrollBy(0, -60)")
            shot("history-week.png")
    bars = driver.find_elements(By.CSS_SELECTOR, "#history-plot rect.completed")
    assert bars and all(float(b.get_attribute("height")) > 0 for b in bars), "no completed bar"
    assert driver.find_elements(By.CSS_SELECTOR, "#history-plot rect.exceptions"), "no exception bar"
    totals = driver.find_element(By.ID, "history-totals").text
    assert f"{args.history_completed} completed" in totals, totals
    assert driver.find_element(By.ID, "history-off").get_attribute("hidden") is not None
    driver.execute_script("document.getElementById('history').scrollIntoView(); window.scrollBy(0, -60)")
    time.sleep(0.3)
    shot("history-hour.png")
    # The whole overview with both charts (the picture in docs/http.md).
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    shot("desktop-history.png")


def purge_dead(driver, args, shot):
    """Purge dead on the function of the dead job left: after the
    confirmation the dead list is empty."""
    wait_until("the dead job to purge", lambda: driver.find_element(
        By.CSS_SELECTOR, f'#dead-table tr[data-handle="{args.purge_handle}"]'))
    driver.find_element(By.CSS_SELECTOR, '#dead-purge button[data-function="doomed"]').click()
    dialog = driver.find_element(By.ID, "dialog")
    wait_until("the purge confirmation", lambda: dialog.is_displayed())
    assert "doomed" in dialog.text, dialog.text
    shot("purge-confirmation.png")
    driver.find_element(By.ID, "dialog-ok").click()
    wait_until("the dead list to empty",
               lambda: not driver.find_elements(By.CSS_SELECTOR, "#dead-table tr[data-handle]"))
    wait_until("the dialog to close", lambda: not dialog.is_displayed())
    wait_until("the purged job to leave the recently ended jobs", lambda: not driver.find_elements(
        By.CSS_SELECTOR, f'#recent-table tr[data-handle="{args.purge_handle}"]'))
    driver.execute_script("document.getElementById('dead').scrollIntoView()")
    shot("purged.png")
    say("PURGE_OK")


def run_now(driver, args, shot):
    """Run now on the cron entry; the test's worker then gets its job."""
    button = f'#cron-table tr[data-name="{args.cron_name}"] button[data-action="run"]'
    driver.find_element(By.CSS_SELECTOR, button).click()
    # Disabled while the request is out, enabled again once answered.
    wait_until("the run's answer", lambda: driver.find_element(By.CSS_SELECTOR, button).is_enabled())
    error = driver.find_element(By.ID, "cron-error")
    assert error.get_attribute("hidden") is not None, error.text
    driver.execute_script("document.getElementById('cron').scrollIntoView()")
    shot("cron-run.png")
    say("RUN_NOW_OK")


def signed_in(driver, args, shot):
    """With --web-token: the page, its stream and its actions all carry
    the Basic sign-in the browser was given."""
    scheme, rest = args.url.split("://", 1)
    driver.get(f"{scheme}://ops:{args.token}@{rest}")
    wait_until("the live indicator", lambda: driver.find_element(By.ID, "live").text == "live")
    wait_until("the function row", lambda: driver.find_elements(
        By.CSS_SELECTOR, f'#fn-table tr[data-function="{args.drop_function}"]'))
    drop(driver, args.drop_function, lambda name: shot("token-" + name))
    say("DROP_OK")
    if args.history_off:
        off = wait_until("the no-history note", lambda: driver.find_element(By.ID, "history-off").text)
        assert "--no-history" in off, off
        assert not driver.find_elements(By.CSS_SELECTOR, "#history-plot svg"), "a chart without history"
        driver.execute_script("document.getElementById('history').scrollIntoView()")
        shot("token-history-off.png")
        say("HISTORY_OFF_OK")


def run(driver, args, shot):
    origin = args.url.rstrip("/")
    driver.get(args.url)

    # The function's row shows its queued jobs, from the live stream.
    wait_until(f"{args.function} queued = {args.queued}",
               lambda: cell(driver, args.function, "queued") == str(args.queued))
    wait_until("the live indicator", lambda: driver.find_element(By.ID, "live").text == "live")
    wait_until("the workers count", lambda: driver.find_element(By.ID, "ov-workers").text == "0")
    # Everything the page loaded came from the server itself.
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat(performance.getEntriesByType('navigation').map(e => e.name))")
    outside = [r for r in resources if not r.startswith(origin + "/")]
    assert not outside, f"loaded from elsewhere: {outside}"
    # Let a few more points reach the chart before the first picture.
    time.sleep(2)
    shot("desktop-queued.png")
    say("QUEUED_OK")

    # The test starts a worker; the page must follow without a reload.
    driver.execute_script("window.__notReloaded = true")
    line = sys.stdin.readline().strip()
    assert line == "WORKER_STARTED", f"expected WORKER_STARTED, got {line!r}"
    # While it works, the worker is listed with its function.
    wait_until("one worker", lambda: driver.find_element(By.ID, "ov-workers").text == "1")
    row = wait_until("the worker's row", lambda: driver.find_element(By.CSS_SELECTOR, "#worker-table tr[data-worker]").text)
    assert args.function in row, row
    driver.execute_script("document.getElementById('workers').scrollIntoView({block: 'end'})")
    shot("desktop-working.png")
    driver.execute_script("window.scrollTo(0, 0)")
    rates = []

    def all_completed():
        rates.append(number(driver.find_element(By.ID, "ov-completed-rate").text))
        return cell(driver, args.function, "completed") == str(args.queued)

    wait_until(f"{args.queued} completed jobs of {args.function}", all_completed, seconds=40)
    wait_until("a non-zero completed/s", lambda: rates.append(
        number(driver.find_element(By.ID, "ov-completed-rate").text)) or any(r for r in rates if r))
    assert cell(driver, args.function, "queued") == "0"
    assert driver.execute_script("return window.__notReloaded === true"), "the page was reloaded"
    history = driver.execute_script(
        "return document.getElementById('chart').toDataURL().length")
    assert history > 1000, "the chart is empty"
    time.sleep(2)
    shot("desktop-live.png")
    say(f"LIVE_OK max_completed_rate={max(r for r in rates if r is not None)}")

    history_chart(driver, args, shot)
    say("HISTORY_OK")

    # Job lookup by handle.
    box = driver.find_element(By.ID, "lookup-handle")
    box.clear()
    box.send_keys(args.lookup_handle)
    driver.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    found = wait_until("the job's details", lambda: driver.find_element(By.CSS_SELECTOR, "#lookup-result dl").text)
    assert args.lookup_function in found and args.lookup_handle in found and "queued" in found, found
    driver.execute_script("document.getElementById('lookup').scrollIntoView()")
    shot("lookup.png")
    # A handle no job has.
    box.clear()
    box.send_keys(args.lookup_handle + "999")
    driver.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    wait_until("the not-found line", lambda: "No job and no job record" in driver.find_element(By.ID, "lookup-result").text)
    # The same job by its function and unique, the handle left empty.
    box.clear()
    driver.find_element(By.ID, "lookup-function").send_keys(args.lookup_function)
    driver.find_element(By.ID, "lookup-unique").send_keys(args.lookup_unique)
    driver.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    found = wait_until("the job found by unique", lambda: driver.find_element(By.CSS_SELECTOR, "#lookup-result dl").text
                       if driver.find_elements(By.CSS_SELECTOR, "#lookup-result dl") else "")
    assert args.lookup_handle in found and args.lookup_unique in found, found
    shot("lookup-unique.png")
    say("LOOKUP_OK")

    records(driver, args, shot)
    say("RECORDS_OK")

    # Dropping a function asks first, then the row goes.
    driver.execute_script("window.scrollTo(0, 0)")
    drop(driver, args.drop_function, shot)
    say("DROP_OK")

    # Queue limits: the dialog shows the current ones and saves new ones.
    driver.find_element(
        By.CSS_SELECTOR, f'#fn-table tr[data-function="{args.lookup_function}"] button[data-action="max-queue"]').click()
    dialog = driver.find_element(By.ID, "dialog")
    wait_until("the limits dialog", lambda: dialog.is_displayed())
    normal = driver.find_element(By.CSS_SELECTOR, "#dialog input[name=normal]")
    assert normal.get_attribute("value") == "0", normal.get_attribute("value")
    normal.clear()
    normal.send_keys("7")
    shot("max-queue.png")
    driver.find_element(By.ID, "dialog-ok").click()
    wait_until("the dialog to close", lambda: not dialog.is_displayed())
    say("MAXQUEUE_OK")

    # Pausing asks first; the row then says paused (from the live stream)
    # and its button offers to resume, which undoes it.
    for action, label, paused in (("Pause", "Resume…", True), ("Resume", "Pause…", False)):
        row = f'#fn-table tr[data-function="{args.lookup_function}"]'
        driver.find_element(By.CSS_SELECTOR, row + ' button[data-action="pause"]').click()
        wait_until(f"the {action} dialog", lambda: dialog.is_displayed())
        assert args.lookup_function in dialog.text and action in dialog.text, dialog.text
        driver.find_element(By.ID, "dialog-ok").click()
        wait_until("the dialog to close", lambda: not dialog.is_displayed())
        wait_until(f"the row to show paused={paused}", lambda: (
            ("paused" in driver.find_element(By.CSS_SELECTOR, row).get_attribute("class").split()) == paused
            and driver.find_element(By.CSS_SELECTOR, row + ' button[data-action="pause"]').text == label))
        if paused:
            shot("paused.png")
    say("PAUSE_OK")

    # A phone-sized screen: nothing wider than the screen.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    driver.refresh()
    wait_until("the function row on the phone",
               lambda: cell(driver, args.function, "completed") == str(args.queued))
    time.sleep(1.5)
    widths = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[2] and widths[1] <= widths[2], f"horizontal overflow: {widths}"
    wide = driver.execute_script(
        "return [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && e.offsetParent !== null)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)")
    assert not wide, f"elements past the right edge: {wide}"
    shot("phone.png")
    driver.execute_script("document.getElementById('history').scrollIntoView(); window.scrollBy(0, -60)")
    wait_until("the history chart on the phone",
               lambda: driver.find_element(By.CSS_SELECTOR, "#history-plot svg").get_attribute("data-slots") == "60")
    chart_right = driver.execute_script(
        "return document.querySelector('#history-plot svg').getBoundingClientRect().right")
    assert chart_right <= widths[2], f"the history chart is wider than the phone: {chart_right}"
    time.sleep(0.3)
    shot("phone-history.png")
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": min(height, 4000), "deviceScaleFactor": 2, "mobile": True})
    time.sleep(0.5)
    shot("phone-full.png")
    # A record on the phone: its attempts become cards too.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    box = driver.find_element(By.ID, "lookup-handle")
    box.clear()
    box.send_keys(args.record_handle)
    driver.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    wait_until("the record on the phone",
               lambda: driver.find_element(By.CSS_SELECTOR, "#lookup-result pre.result").text == "report ready")
    wide = driver.execute_script(
        "return [...document.querySelectorAll('#lookup *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && e.offsetParent !== null)"
        ".map(e => e.tagName + '.' + e.className).slice(0, 5)")
    assert not wide, f"record elements past the right edge: {wide}"
    driver.execute_script("document.getElementById('lookup').scrollIntoView()")
    time.sleep(0.3)
    shot("phone-record.png")
    say(f"PHONE_OK widths={widths}")

    # The lookup of a handle no job has answered 404, as it should.
    expected = args.lookup_handle.replace(":", "%3A") + "999 - Failed to load resource: the server responded with a status of 404"
    errors = [e for e in driver.get_log("browser")
              if e.get("level") == "SEVERE" and expected not in e.get("message", "")]
    assert not errors, f"the browser console has errors: {errors}"
    say("CONSOLE_OK")


if __name__ == "__main__":
    main()
