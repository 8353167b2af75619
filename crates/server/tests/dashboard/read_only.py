#!/usr/bin/env python3
"""The dashboard under an ACL in headless Chromium (selenium): opened as
the loopback network's identity, which may write, its function row shows
its action buttons; with a read-only section's web token in the page's
storage (as the page keeps a token it asked for), the header names that
identity and no action button is shown. Prints WRITE and READONLY lines
with what the header said."""

import argparse
import os
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def wait_until(what, test, limit=20.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            if test():
                return
        except Exception:  # the page is being rebuilt; look again
            pass
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def shown_actions(driver, function):
    selector = f'#fn-table tr[data-function="{function}"] td.actions button'
    return [b for b in driver.find_elements(By.CSS_SELECTOR, selector) if b.is_displayed()]


def whoami(driver):
    element = driver.find_element(By.ID, "whoami")
    return element.text if element.is_displayed() else ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True, help="a read-only section's web_token")
    p.add_argument("--identity", required=True, help="that section's name")
    p.add_argument("--function", required=True, help="a function the server knows")
    p.add_argument("--shots", required=True)
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
    driver = webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=options)
    try:
        driver.get(args.url)
        wait_until("the write identity in the header", lambda: "read and write" in whoami(driver))
        wait_until("the function's three action buttons", lambda: len(shown_actions(driver, args.function)) == 3)
        print("WRITE " + whoami(driver), flush=True)
        driver.save_screenshot(os.path.join(args.shots, "write.png"))

        driver.execute_script("sessionStorage.setItem('sprocket-token', arguments[0])", args.token)
        driver.refresh()
        wanted = args.identity + " (read-only)"
        wait_until("the read-only identity in the header", lambda: whoami(driver) == wanted)
        wait_until("the function's row", lambda: driver.find_elements(
            By.CSS_SELECTOR, f'#fn-table tr[data-function="{args.function}"]'))
        # The row is there with its (hidden) buttons; none may show.
        time.sleep(0.5)
        assert shown_actions(driver, args.function) == [], "a read-only identity sees action buttons"
        assert driver.find_elements(By.CSS_SELECTOR, f'#fn-table tr[data-function="{args.function}"] td.actions button')
        driver.save_screenshot(os.path.join(args.shots, "read-only.png"))
        print("READONLY " + whoami(driver), flush=True)
    except BaseException:
        driver.save_screenshot(os.path.join(args.shots, "failure.png"))
        raise
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
