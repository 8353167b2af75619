// sprocketd dashboard: the history chart. Asks api/v1/history for every
// slot of the last hour, day or week (the server keeps the history; the
// page keeps nothing) and draws ended jobs per slot as stacked bars in
// inline SVG. Refreshed every REFRESH_MS, not on every live event: a slot
// is a minute wide at the finest, so a faster refresh would show nothing
// new.
"use strict";

(function () {
  const REFRESH_MS = 15000;
  // The SVG namespace: a name, never fetched.
  const SVG = "http://www.w3.org/2000/svg";
  // Outcomes drawn, bottom of the stack first, with their legend names.
  const OUTCOMES = [
    ["completed", "completed"],
    ["failed", "failed"],
    ["exceptions", "exceptions"],
    ["dead", "dead"],
  ];
  const WINDOWS = {
    hour: { title: "last hour", slot: "minute" },
    day: { title: "last day", slot: "hour" },
    week: { title: "last week", slot: "4 hours" },
  };

  let chosen = "hour";
  let series = null;
  // Each read is numbered: an answer to an older read (the window changed
  // while it was on its way) is not drawn.
  let reads = 0;

  const $ = (id) => document.getElementById(id);
  const base = location.origin + location.pathname.replace(/[^/]*$/, "");

  function svg(tag, attributes, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    for (const child of children) node.append(child);
    return node;
  }

  function niceCeiling(v) {
    if (v <= 1) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(v)));
    for (const step of [1, 2, 5, 10]) {
      if (v <= step * power) return step * power;
    }
    return 10 * power;
  }

  function two(n) {
    return String(n).padStart(2, "0");
  }

  // A slot's start as people read it, in the browser's time zone: a time
  // of day under the hour and day charts, a weekday and day of the month
  // under the week's; `long` (for a bar's tooltip) gives both.
  function label(ms, long) {
    const d = new Date(ms);
    const time = two(d.getHours()) + ":" + two(d.getMinutes());
    const day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][d.getDay()] + " " + d.getDate();
    if (long) return day + " " + time;
    return chosen === "week" ? day : time;
  }

  function shown(slot) {
    return OUTCOMES.reduce((sum, [key]) => sum + slot.counts[key], 0);
  }

  function sum(key) {
    return series.slots.reduce((total, slot) => total + slot.counts[key], 0);
  }

  function showOff(message) {
    $("history-plot").replaceChildren();
    $("history-plot").hidden = true;
    $("history-totals").textContent = "";
    $("history-off").textContent = message;
    $("history-off").hidden = false;
  }

  function draw() {
    const plot = $("history-plot");
    if (!series) return;
    plot.hidden = false;
    $("history-off").hidden = true;
    const width = Math.max(plot.clientWidth, 240);
    const height = 200;
    const left = 40;
    const right = 8;
    const top = 10;
    const bottom = 22;
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const slots = series.slots;
    const ceiling = niceCeiling(Math.max(0, ...slots.map(shown)));
    const chart = svg("svg", {
      width,
      height,
      viewBox: "0 0 " + width + " " + height,
      role: "img",
      "aria-label": "Ended jobs per " + WINDOWS[chosen].slot + ", " + WINDOWS[chosen].title,
      "data-window": series.window,
      "data-slots": slots.length,
    });
    for (const fraction of [0, 0.5, 1]) {
      const y = Math.round(top + plotHeight * (1 - fraction)) + 0.5;
      chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }));
      const value = ceiling * fraction;
      chart.append(
        svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, Number.isInteger(value) ? String(value) : value.toFixed(1)),
      );
    }
    const step = plotWidth / Math.max(slots.length, 1);
    const gap = step >= 4 ? 1 : 0;
    slots.forEach((slot, i) => {
      const x = left + i * step;
      const group = svg("g", { class: "slot", "data-start": slot.start });
      const parts = OUTCOMES.filter(([key]) => slot.counts[key] > 0).map(([key, name]) => count(slot.counts[key]) + " " + name);
      const title = label(slot.start, true) + ": " + (parts.length ? parts.join(", ") : "nothing ended");
      group.append(svg("title", {}, title));
      group.append(svg("rect", { class: "hit", x, y: top, width: step, height: plotHeight }));
      let stackTop = top + plotHeight;
      for (const [key] of OUTCOMES) {
        const n = slot.counts[key];
        if (!n) continue;
        const h = Math.max((n / ceiling) * plotHeight, 1);
        stackTop -= h;
        group.append(
          svg("rect", { class: key, "data-count": n, x: x + gap / 2, y: stackTop, width: Math.max(step - gap, 1), height: h }),
        );
      }
      for (const [key] of OUTCOMES) group.dataset[key] = slot.counts[key];
      chart.append(group);
    });
    // Time labels: the first slot, the middle one and the current one.
    if (slots.length) {
      const middle = slots[Math.floor(slots.length / 2)];
      const y = height - 6;
      chart.append(svg("text", { x: left, y, "text-anchor": "start" }, label(slots[0].start)));
      chart.append(svg("text", { x: left + plotWidth / 2, y, "text-anchor": "middle" }, label(middle.start)));
      chart.append(svg("text", { x: width - right, y, "text-anchor": "end" }, "now"));
    }
    plot.replaceChildren(chart);
    const totals = OUTCOMES.map(([key, name]) => count(sum(key)) + " " + name);
    const retried = sum("retried");
    if (retried) totals.push(count(retried) + " attempts retried");
    const totalsLine = $("history-totals");
    totalsLine.textContent = "In the " + WINDOWS[chosen].title + ": " + totals.join(", ") + ".";
    totalsLine.dataset.completed = sum("completed");
    totalsLine.dataset.failed = sum("failed");
  }

  function count(n) {
    return Number(n).toLocaleString("en-US");
  }

  async function load() {
    const read = ++reads;
    try {
      const headers = {};
      const token = sessionStorage.getItem("sprocket-token");
      if (token) headers["Authorization"] = "Bearer " + token;
      const answer = await fetch(base + "api/v1/history?window=" + chosen, {
        headers,
        credentials: "same-origin",
        cache: "no-store",
      });
      let data = null;
      try {
        data = await answer.json();
      } catch (_) {
        data = null;
      }
      if (read !== reads) return;
      if (answer.status === 401) {
        // The rest of the page asks for the token; read again once it may
        // have it.
        showOff("Waiting for the web token…");
        setTimeout(load, 3000);
        return;
      }
      if (!answer.ok) {
        // A server started with --no-history answers 503 with a message
        // that says so and how to turn it on.
        const why = (data && data.error) || answer.status + " " + answer.statusText;
        showOff(why.charAt(0).toUpperCase() + why.slice(1) + ".");
        series = null;
        return;
      }
      series = data;
      draw();
    } catch (error) {
      if (read === reads) showOff("Cannot read the history: " + error.message);
    }
  }

  function choose(name) {
    chosen = name;
    for (const button of document.querySelectorAll("#history-windows button")) {
      button.setAttribute("aria-pressed", String(button.dataset.window === name));
    }
    $("history-title").textContent = "Ended jobs per " + WINDOWS[name].slot + ", " + WINDOWS[name].title;
    load();
  }

  function start() {
    for (const button of document.querySelectorAll("#history-windows button")) {
      button.addEventListener("click", () => choose(button.dataset.window));
    }
    window.addEventListener("resize", draw);
    choose(chosen);
    setInterval(load, REFRESH_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
