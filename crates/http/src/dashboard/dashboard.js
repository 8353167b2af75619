// sprocketd dashboard. Plain JavaScript, no build step, nothing loaded
// from elsewhere: it shows the live stream at api/v1/events (one JSON
// snapshot a second: overview, functions, workers) and calls the JSON API
// for job lookups, job records and operator actions. Paths are relative, so the page also works behind a
// proxy that serves it under a prefix.
"use strict";

(function () {
  // The chart keeps this much history, in the browser only.
  const HISTORY_MS = 10 * 60 * 1000;
  // Without an event for this long, the page says it is not live.
  const STALE_MS = 3500;

  const history = [];
  let lastEventAt = 0;
  let lastSnapshot = null;
  let workersShown = null;
  // A token typed in after a 401 (the browser's own sign-in, with the
  // token as password, needs none of this).
  let token = sessionStorage.getItem("sprocket-token");

  const $ = (id) => document.getElementById(id);

  // The page's directory without any user:password@ the address was
  // opened with: fetch refuses URLs that carry credentials (the browser
  // still sends the ones it signed in with).
  const base = location.origin + location.pathname.replace(/[^/]*$/, "");

  function element(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) {
      node.append(child);
    }
    return node;
  }

  function count(n) {
    return n == null ? "–" : Number(n).toLocaleString("en-US");
  }

  function rate(r) {
    if (r == null) return "–";
    if (r === 0) return "0";
    return r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString("en-US");
  }

  function duration(seconds) {
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  // Calls the API. Write calls carry a JSON body (the server wants one)
  // and the browser adds Origin, which the server checks against its own
  // address. On 401 it asks for the token once and tries again.
  async function api(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      const headers = {};
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (token) headers["Authorization"] = "Bearer " + token;
      const answer = await fetch(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
      if (answer.status === 401 && attempt === 0) {
        const given = window.prompt("This server needs its web token (--web-token):");
        if (given) {
          token = given;
          sessionStorage.setItem("sprocket-token", given);
          continue;
        }
      }
      let data = null;
      try {
        data = await answer.json();
      } catch (_) {
        data = null;
      }
      if (!answer.ok) {
        const error = new Error((data && data.error) || answer.status + " " + answer.statusText);
        error.status = answer.status;
        throw error;
      }
      return data;
    }
  }

  // ---- live stream ------------------------------------------------------

  function setLive(on) {
    const live = $("live");
    live.className = "live " + (on ? "on" : "off");
    live.textContent = on ? "live" : lastEventAt ? "reconnecting…" : "connecting…";
  }

  function connect() {
    const source = new EventSource(base + "api/v1/events");
    source.onmessage = (event) => {
      lastEventAt = Date.now();
      setLive(true);
      let snapshot;
      try {
        snapshot = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      show(snapshot);
    };
    source.onerror = () => {
      setLive(false);
      // A refused stream (401, server gone) is not retried by the
      // browser: start a new one a little later.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, 5000);
      }
    };
  }

  function show(s) {
    lastSnapshot = s;
    $("version").textContent = s.version;
    document.title = "sprocketd " + s.version;
    $("ov-uptime").textContent = duration(s.uptime_seconds);
    const store = $("ov-store");
    store.textContent = s.store.name + (s.store.up ? "" : " (unreachable)");
    store.className = "value small" + (s.store.up ? "" : " bad");
    $("ov-connections").textContent = count(s.connections);
    $("ov-workers").textContent = count(s.workers);
    $("ov-queued").textContent = count(s.queued);
    $("ov-running").textContent = count(s.running);
    $("ov-completed-rate").textContent = rate(s.rates && s.rates.completed);
    $("ov-failed-rate").textContent = rate(s.rates && s.rates.failed);
    if (s.rates) {
      history.push({ t: s.time_ms, completed: s.rates.completed, failed: s.rates.failed });
      while (history.length && history[0].t < s.time_ms - HISTORY_MS) history.shift();
    }
    drawChart();
    showFunctions(s.function_rows);
    showWorkers(s.worker_rows, s.connections);
    maybeShowRecent(s);
  }

  // ---- chart ------------------------------------------------------------

  function niceCeiling(v) {
    if (v <= 1) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(v)));
    for (const step of [1, 2, 5, 10]) {
      if (v <= step * power) return step * power;
    }
    return 10 * power;
  }

  function drawChart() {
    const canvas = $("chart");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const css = getComputedStyle(document.documentElement);
    const colour = (name) => css.getPropertyValue(name).trim();

    const left = 44;
    const right = 8;
    const top = 10;
    const bottom = 22;
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const end = history.length ? history[history.length - 1].t : Date.now();
    const start = end - HISTORY_MS;
    let highest = 0;
    for (const p of history) highest = Math.max(highest, p.completed, p.failed);
    const ceiling = niceCeiling(highest);

    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = colour("--muted");
    ctx.strokeStyle = colour("--line");
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const fraction of [0, 0.5, 1]) {
      const y = Math.round(top + plotHeight * (1 - fraction)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(width - right, y);
      ctx.stroke();
      ctx.fillText(String(Number((ceiling * fraction).toFixed(1))), left - 6, y);
    }
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    ctx.fillText("10 min ago", left, height - bottom + 6);
    ctx.textAlign = "center";
    ctx.fillText("5 min", left + plotWidth / 2, height - bottom + 6);
    ctx.textAlign = "right";
    ctx.fillText("now", width - right, height - bottom + 6);

    const x = (t) => left + ((t - start) / HISTORY_MS) * plotWidth;
    const y = (v) => top + plotHeight * (1 - v / ceiling);
    // Failures first: where both are 0 the line reads as all well.
    for (const [key, name] of [["failed", "--bad"], ["completed", "--good"]]) {
      if (!history.length) break;
      ctx.strokeStyle = colour(name);
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.beginPath();
      history.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[key])) : ctx.moveTo(x(p.t), y(p[key]))));
      ctx.stroke();
    }
  }

  // ---- functions --------------------------------------------------------

  const FUNCTION_COLUMNS = [
    ["queued", "Queued", (f) => count(f.queued)],
    ["running", "Running", (f) => count(f.running)],
    ["retrying", "Retrying", (f) => count(f.retrying)],
    ["workers", "Workers", (f) => count(f.workers)],
    ["submitted", "Submitted", (f) => count(f.counters.submitted)],
    ["completed", "Completed", (f) => count(f.counters.completed)],
    ["failed", "Failed", (f) => count(f.counters.failed)],
    ["exceptions", "Exceptions", (f) => count(f.counters.exceptions)],
    ["completed-rate", "Completed/s", (f) => rate(f.rates && f.rates.completed)],
    ["failed-rate", "Failed/s", (f) => rate(f.rates && f.rates.failed)],
  ];

  function functionRow(name) {
    const row = element("tr");
    row.dataset.function = name;
    row.append(element("td", { className: "name", textContent: name }));
    for (const [key, label] of FUNCTION_COLUMNS) {
      const cell = element("td", { className: "num" });
      cell.dataset.col = key;
      cell.dataset.label = label;
      row.append(cell);
    }
    const pause = element("button", { type: "button", className: "small", textContent: "Pause…" });
    pause.dataset.action = "pause";
    pause.addEventListener("click", () => confirmPause(name, row.dataset.paused !== "1"));
    const limits = element("button", { type: "button", className: "small", textContent: "Max queue…" });
    limits.dataset.action = "max-queue";
    limits.addEventListener("click", () => editMaxQueue(name));
    const drop = element("button", { type: "button", className: "small danger", textContent: "Drop…" });
    drop.dataset.action = "drop";
    drop.addEventListener("click", () => confirmDrop(name));
    row.append(element("td", { className: "actions" }, pause, limits, drop));
    return row;
  }

  function showFunctions(rows) {
    const body = $("fn-table").querySelector("tbody");
    const existing = new Map();
    for (const tr of body.rows) existing.set(tr.dataset.function, tr);
    let previous = null;
    for (const f of rows) {
      let tr = existing.get(f.name);
      existing.delete(f.name);
      if (!tr) tr = functionRow(f.name);
      // Keep the server's order (by name) without rebuilding rows, so a
      // button under the pointer stays where it is.
      const wanted = previous ? previous.nextSibling : body.firstChild;
      if (tr !== wanted) body.insertBefore(tr, wanted);
      for (const [key, , value] of FUNCTION_COLUMNS) {
        const cell = tr.querySelector('td[data-col="' + key + '"]');
        const text = value(f);
        if (cell.textContent !== text) cell.textContent = text;
      }
      const paused = f.paused ? "1" : "";
      if (tr.dataset.paused !== paused) {
        tr.dataset.paused = paused;
        tr.classList.toggle("paused", f.paused);
        const name = tr.querySelector("td.name");
        name.title = f.paused ? "paused: its jobs queue but are not handed out" : "";
        tr.querySelector('button[data-action="pause"]').textContent = f.paused ? "Resume…" : "Pause…";
      }
      previous = tr;
    }
    for (const tr of existing.values()) tr.remove();
    $("fn-empty").hidden = rows.length > 0;
    $("fn-table").hidden = rows.length === 0;
    $("functions-count").textContent = rows.length ? "(" + count(rows.length) + ")" : "";
  }

  // ---- dialogs ----------------------------------------------------------

  // Shows the dialog; `act` runs on OK and closes it when it succeeds, or
  // shows its error.
  function openDialog(title, body, okText, danger, act) {
    const dialog = $("dialog");
    $("dialog-title").textContent = title;
    $("dialog-body").replaceChildren(...body);
    const error = $("dialog-error");
    error.hidden = true;
    const ok = $("dialog-ok");
    ok.textContent = okText;
    ok.className = danger ? "primary danger" : "primary";
    ok.disabled = false;
    $("dialog-form").onsubmit = async (event) => {
      event.preventDefault();
      ok.disabled = true;
      try {
        await act();
        dialog.close();
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      } finally {
        ok.disabled = false;
      }
    };
    $("dialog-cancel").onclick = () => dialog.close();
    dialog.showModal();
  }

  // Pausing keeps the function's jobs queued but hands none out (kept
  // across restarts by a durable store); resuming hands them out again.
  function confirmPause(name, pause) {
    openDialog(
      (pause ? "Pause" : "Resume") + " function " + name + "?",
      [
        element("p", {
          textContent: pause
            ? "Its jobs keep queueing, but no worker gets one until you resume it. Running jobs finish as usual."
            : "Its queued jobs are handed out again, and sleeping workers are woken.",
        }),
      ],
      pause ? "Pause" : "Resume",
      false,
      () => api("POST", "api/v1/functions/" + encodeURIComponent(name) + (pause ? "/pause" : "/resume"), {}),
    );
  }

  function confirmDrop(name) {
    const row = lastSnapshot && lastSnapshot.function_rows.find((f) => f.name === name);
    const queued = row ? row.queued : 0;
    openDialog(
      "Drop function " + name + "?",
      [
        element("p", {
          textContent:
            "Its " + count(queued) + " queued job" + (queued === 1 ? "" : "s") +
            " end now (waiting clients get WORK_FAIL) and the function is forgotten. " +
            "A function with workers or running jobs cannot be dropped.",
        }),
      ],
      "Drop",
      true,
      () => api("DELETE", "api/v1/functions/" + encodeURIComponent(name)),
    );
  }

  async function editMaxQueue(name) {
    let current;
    try {
      current = await api("GET", "api/v1/functions/" + encodeURIComponent(name));
    } catch (e) {
      window.alert("Cannot read " + name + ": " + e.message);
      return;
    }
    const inputs = {};
    const lines = ["high", "normal", "low"].map((p) => {
      inputs[p] = element("input", { type: "number", min: "0", step: "1", value: String(current.max_queue[p]), required: true });
      inputs[p].name = p;
      return element("label", {}, p.charAt(0).toUpperCase() + p.slice(1) + " priority", inputs[p]);
    });
    openDialog(
      "Queue limits of " + name,
      [element("p", { className: "muted", textContent: "Most jobs the function may hold, by the priority of a new job; 0 is no limit." }), ...lines],
      "Save",
      false,
      () => {
        const limits = {};
        for (const p of ["high", "normal", "low"]) {
          const n = Number(inputs[p].value);
          if (!Number.isInteger(n) || n < 0 || n > 4294967295) throw new Error(p + ": a whole number from 0 to 4294967295");
          limits[p] = n;
        }
        return api("POST", "api/v1/functions/" + encodeURIComponent(name) + "/max-queue", limits);
      },
    );
  }

  // ---- workers ----------------------------------------------------------

  function showWorkers(workers, connections) {
    // Rebuilt only when something changed, so a selection survives.
    const shape = JSON.stringify(workers);
    if (shape === workersShown) return;
    workersShown = shape;
    const body = $("worker-table").querySelector("tbody");
    const cell = (label, text, className) => {
      const td = element("td", { textContent: text, className: className || "" });
      td.dataset.label = label;
      return td;
    };
    body.replaceChildren(
      ...workers.map((w) => {
        const tr = element(
          "tr",
          {},
          cell("Id", String(w.id), "num"),
          cell("Address", w.address),
          cell("Client id", w.client_id == null ? "–" : w.client_id),
          cell("Functions", w.functions.join(", ")),
          cell("Running jobs", w.running.length ? w.running.join(", ") : "–"),
          cell("State", w.sleeping ? "sleeping" : w.running.length ? "working" : "awake"),
        );
        tr.dataset.worker = String(w.id);
        return tr;
      }),
    );
    $("worker-table").hidden = workers.length === 0;
    $("workers-empty").hidden = workers.length > 0;
    $("workers-count").textContent = "(" + count(workers.length) + " of " + count(connections) + " connections)";
  }

  // ---- job lookup -------------------------------------------------------

  // A byte string of a record: its text, or a note when the bytes are not
  // UTF-8 (the API gives them as base64 in `field_base64`).
  function bytesOf(object, field) {
    if (object[field] != null) return object[field];
    const encoded = object[field + "_base64"];
    if (encoded == null) return null;
    return "(" + Math.floor((encoded.length * 3) / 4 - (encoded.match(/=+$/) || [""])[0].length) + " bytes, not text)";
  }

  function millis(ms) {
    if (ms == null) return "–";
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
    return duration(ms / 1000);
  }

  function moment(ms) {
    return ms == null ? "–" : new Date(ms).toLocaleString();
  }

  function fieldList(fields) {
    const list = element("dl", { className: "job" });
    for (const [name, value] of fields) list.append(element("dt", { textContent: name }), element("dd", { textContent: value }));
    return list;
  }

  // What a job's record holds (no job data: a record keeps none): times,
  // the result or error, data and warnings, and each attempt.
  function recordView(record) {
    const parts = [];
    const fields = [
      ["State", record.state],
      ["Submitted", moment(record.submitted)],
      ["First started", moment(record.started)],
      ["Ended", moment(record.finished)],
      ["Queue wait", millis(record.queue_wait_ms)],
      ["Run time", millis(record.run_time_ms)],
      ["Attempts", String(record.attempts)],
    ];
    if (record.status) fields.push(["Last status", record.status.numerator + " / " + record.status.denominator]);
    const list = fieldList(fields);
    list.querySelector("dd").className = "state-" + record.state;
    parts.push(list);
    const result = bytesOf(record, "result");
    if (result != null) parts.push(element("h3", { textContent: "Result" }), element("pre", { className: "result", textContent: result }));
    const error = bytesOf(record, "error");
    if (error != null) parts.push(element("h3", { textContent: "Error" }), element("pre", { className: "error bad", textContent: error }));
    for (const [key, title] of [["data", "Data"], ["warnings", "Warnings"]]) {
      if (!record[key] || !record[key].length) continue;
      const chunks = element("ol", { className: "chunks " + key });
      for (const chunk of record[key]) {
        chunks.append(element("li", { textContent: bytesOf(chunk, "value") + (chunk.cut ? " (cut)" : "") }));
      }
      parts.push(element("h3", { textContent: title + " (" + record[key].length + ")" }), chunks);
    }
    if (record.attempt_log && record.attempt_log.length) {
      const headings = ["#", "Worker", "Address", "Started", "Took", "Ended as"];
      const labelled = (i, props) => {
        const td = element("td", props);
        td.dataset.label = headings[i];
        return td;
      };
      const rows = record.attempt_log.map((a, i) =>
        element(
          "tr",
          {},
          labelled(0, { className: "num", textContent: String(record.attempts - record.attempt_log.length + i + 1) }),
          labelled(1, { textContent: bytesOf(a, "client_id") || "–" }),
          labelled(2, { textContent: a.peer }),
          labelled(3, { textContent: moment(a.started) }),
          labelled(4, { textContent: a.ended == null ? "running" : millis(a.ended - a.started) }),
          labelled(5, { className: a.end === "completed" ? "state-complete" : a.end ? "bad" : "", textContent: a.end || "–" }),
        ),
      );
      const table = element(
        "table",
        { className: "attempts responsive" },
        element("thead", {}, element("tr", {}, ...headings.map((h) => element("th", { textContent: h })))),
        element("tbody", {}, ...rows),
      );
      parts.push(element("h3", { textContent: "Attempts" }), table);
    }
    if (record.truncated) {
      const t = record.truncated;
      parts.push(
        element("p", {
          className: "muted",
          textContent:
            "Cut to the record's byte limit: " + t.chunks_received + " chunks of " + t.chunk_bytes_received + " bytes arrived" +
            (t.result_bytes_received == null ? "." : ", and a result of " + t.result_bytes_received + " bytes."),
        }),
      );
    }
    return element("div", { className: "record" }, ...parts);
  }

  // A job by its handle, or (handle left empty) by its function and unique.
  async function lookUp(handle, fn, unique) {
    const out = $("lookup-result");
    out.replaceChildren(element("p", { className: "muted", textContent: "Looking up…" }));
    const path = handle
      ? "api/v1/jobs/" + encodeURIComponent(handle)
      : "api/v1/functions/" + encodeURIComponent(fn) + "/jobs/" + encodeURIComponent(unique);
    const what = handle ? "the handle " + handle : "the unique " + unique + " of " + fn;
    let job;
    try {
      job = await api("GET", path);
    } catch (e) {
      const text =
        e.status === 404 ? "No job and no job record has " + what + " (records expire after --record-retention)." : e.message;
      out.replaceChildren(element("p", { className: e.status === 404 ? "muted" : "bad", textContent: text }));
      return;
    }
    const head = [
      ["Handle", bytesOf(job, "handle")],
      ["Function", bytesOf(job, "function")],
      ["Unique", bytesOf(job, "unique") || "–"],
      ["Priority", job.priority],
      ["Background", job.background ? "yes" : "no"],
    ];
    if (!job.live) {
      head.push(["Live", "no: the job has ended; this is its record"]);
      out.replaceChildren(fieldList(head), recordView(job));
      return;
    }
    const when = job.when == null ? "at once" : new Date(job.when * 1000).toLocaleString();
    const fields = head.concat([
      ["State", job.state + (job.worker == null ? "" : " (worker " + job.worker + ")")],
      ["Runs", when],
      ["Failed attempts", String(job.attempts)],
      ["Waiting clients", String(job.clients)],
      ["Progress", job.progress.denominator ? job.progress.numerator + " / " + job.progress.denominator : "–"],
      ["Stored", job.stored ? "yes" : "no"],
    ]);
    const cancel = element("button", { type: "button", className: "danger cancel-job", textContent: "Cancel job…" });
    cancel.addEventListener("click", () =>
      openDialog(
        "Cancel job " + job.handle + "?",
        [element("p", { textContent: "Its waiting clients get WORK_FAIL; a running job finishes with nobody listening." })],
        "Cancel job",
        true,
        async () => {
          await api("POST", "api/v1/jobs/" + encodeURIComponent(job.handle) + "/cancel", {});
          lookUp(job.handle);
        },
      ),
    );
    const parts = [fieldList(fields), cancel];
    if (job.record) parts.push(element("h3", { textContent: "Record so far" }), recordView(job.record));
    out.replaceChildren(...parts);
  }

  // ---- recently ended jobs ----------------------------------------------

  const RECENT_LIMIT = 25;
  // Refreshed when the live counters say jobs ended, at most this often.
  const RECENT_EVERY_MS = 3000;
  let recentEnded = null;
  let recentAt = 0;
  let recentBusy = false;

  function endedCount(s) {
    const c = s.counters || {};
    return (c.completed || 0) + (c.failed || 0) + (c.exceptions || 0) + (c.dead || 0);
  }

  async function showRecent() {
    if (recentBusy) return;
    recentBusy = true;
    recentAt = Date.now();
    const query = new URLSearchParams({ limit: String(RECENT_LIMIT) });
    const fn = $("recent-function").value.trim();
    const state = $("recent-state").value;
    if (fn) query.set("function", fn);
    if (state) query.set("state", state);
    const error = $("recent-error");
    try {
      const page = await api("GET", "api/v1/records?" + query.toString());
      error.hidden = true;
      const cell = (label, text, className) => {
        const td = element("td", { textContent: text, className: className || "" });
        td.dataset.label = label;
        return td;
      };
      const rows = page.records.map((r) => {
        const handle = bytesOf(r, "handle");
        const open = element("button", { type: "button", className: "link", textContent: handle });
        open.addEventListener("click", () => {
          $("lookup-handle").value = handle;
          lookUp(handle);
          $("lookup").scrollIntoView();
        });
        const handleCell = element("td", { className: "name" }, open);
        handleCell.dataset.label = "Handle";
        const outcome = bytesOf(r, "error") ?? bytesOf(r, "result") ?? "–";
        const tr = element(
          "tr",
          {},
          handleCell,
          cell("Function", bytesOf(r, "function")),
          cell("State", r.state, "state-" + r.state),
          cell("Ended", moment(r.finished)),
          cell("Queue wait", millis(r.queue_wait_ms), "num"),
          cell("Run time", millis(r.run_time_ms), "num"),
          cell("Attempts", String(r.attempts), "num"),
          cell("Result or error", outcome.length > 80 ? outcome.slice(0, 80) + "…" : outcome, "preview"),
        );
        tr.dataset.handle = handle;
        return tr;
      });
      $("recent-table").querySelector("tbody").replaceChildren(...rows);
      $("recent-table").hidden = rows.length === 0;
      $("recent-empty").hidden = rows.length > 0;
    } catch (e) {
      error.textContent = "Cannot read job records: " + e.message;
      error.hidden = false;
    } finally {
      recentBusy = false;
    }
  }

  // Called with each live snapshot: refreshes the table when jobs ended.
  function maybeShowRecent(s) {
    const ended = endedCount(s);
    if (ended === recentEnded || Date.now() - recentAt < RECENT_EVERY_MS) return;
    recentEnded = ended;
    showRecent();
  }

  // ---- retrying, dead jobs and cron --------------------------------------

  // These lists are not in the live snapshot: they are read every few
  // seconds, and at once after an action on them.
  const LISTS_EVERY_MS = 3000;
  let listsBusy = false;

  function labelled(label, text, className) {
    const td = element("td", { textContent: text, className: className || "" });
    td.dataset.label = label;
    return td;
  }

  function showTable(id, rows, countId) {
    $(id + "-table").querySelector("tbody").replaceChildren(...rows);
    $(id + "-table").hidden = rows.length === 0;
    $(id + "-empty").hidden = rows.length > 0;
    $(countId).textContent = rows.length ? "(" + count(rows.length) + ")" : "";
  }

  async function showRetrying() {
    const page = await api("GET", "api/v1/jobs?state=retrying&limit=100");
    const rows = page.jobs.map((j) => {
      const tr = element(
        "tr",
        {},
        labelled("Handle", j.handle, "name"),
        labelled("Function", j.function),
        labelled("State", j.state, "badge state-" + j.state),
        labelled("Attempts", String(j.attempts), "num"),
        labelled("Next attempt", j.when == null ? "–" : moment(j.when * 1000)),
      );
      tr.dataset.handle = j.handle;
      return tr;
    });
    showTable("retrying", rows, "retrying-count");
  }

  async function showDead() {
    const page = await api("GET", "api/v1/dead?limit=" + RECENT_LIMIT);
    const functions = new Set();
    const rows = page.records.map((r) => {
      const handle = bytesOf(r, "handle");
      const fn = bytesOf(r, "function");
      functions.add(fn);
      const error = bytesOf(r, "error") ?? "–";
      const retry = element("button", { type: "button", className: "small", textContent: "Retry" });
      retry.dataset.action = "retry";
      retry.addEventListener("click", async () => {
        retry.disabled = true;
        try {
          await api("POST", "api/v1/dead/" + encodeURIComponent(handle) + "/requeue", {});
          $("dead-error").hidden = true;
        } catch (e) {
          $("dead-error").textContent = "Cannot retry " + handle + ": " + e.message;
          $("dead-error").hidden = false;
        }
        refreshLists();
      });
      const actions = element("td", { className: "actions" }, retry);
      actions.dataset.label = "Actions";
      const tr = element(
        "tr",
        {},
        labelled("Function", fn, "name"),
        labelled("Handle", handle),
        labelled("Attempts", String(r.attempts), "num"),
        labelled("Last error", error.length > 80 ? error.slice(0, 80) + "…" : error, "preview"),
        labelled("Died", moment(r.finished)),
        actions,
      );
      tr.dataset.handle = handle;
      return tr;
    });
    showTable("dead", rows, "dead-count");
    const purges = [...functions].sort().map((fn) => {
      const purge = element("button", { type: "button", className: "small danger", textContent: "Purge dead " + fn + "…" });
      purge.dataset.function = fn;
      purge.addEventListener("click", () => confirmPurgeDead(fn));
      return purge;
    });
    $("dead-purge").replaceChildren(...purges);
  }

  function confirmPurgeDead(fn) {
    openDialog(
      "Purge the dead jobs of " + fn + "?",
      [element("p", { textContent: "Their records are deleted: they can no longer be retried or looked up." })],
      "Purge",
      true,
      async () => {
        await api("DELETE", "api/v1/dead?function=" + encodeURIComponent(fn));
        refreshLists();
        // The purged records leave the recently ended jobs too.
        showRecent();
      },
    );
  }

  async function showCron() {
    const entries = await api("GET", "api/v1/cron");
    const rows = entries.map((c) => {
      const run = element("button", { type: "button", className: "small", textContent: "Run now" });
      run.dataset.action = "run";
      run.addEventListener("click", async () => {
        run.disabled = true;
        try {
          await api("POST", "api/v1/cron/" + encodeURIComponent(c.name) + "/run", {});
          $("cron-error").hidden = true;
        } catch (e) {
          $("cron-error").textContent = "Cannot run " + c.name + ": " + e.message;
          $("cron-error").hidden = false;
        } finally {
          run.disabled = false;
        }
      });
      const actions = element("td", { className: "actions" }, run);
      actions.dataset.label = "Actions";
      const tr = element(
        "tr",
        {},
        labelled("Name", c.name, "name"),
        labelled("Schedule", c.schedule),
        labelled("Time zone", c.timezone),
        labelled("Function", c.function),
        labelled("Next run", c.next_time || (c.next == null ? "never" : moment(c.next * 1000))),
        actions,
      );
      tr.dataset.name = c.name;
      return tr;
    });
    showTable("cron", rows, "cron-count");
  }

  async function refreshLists() {
    if (listsBusy) return;
    listsBusy = true;
    try {
      const results = await Promise.allSettled([showRetrying(), showDead(), showCron()]);
      const failed = results.find((r) => r.status === "rejected");
      if (failed && failed.reason && failed.reason.status !== 401) {
        $("dead-error").textContent = "Cannot read the lists: " + failed.reason.message;
        $("dead-error").hidden = false;
      }
    } finally {
      listsBusy = false;
    }
  }

  // ---- who you are ------------------------------------------------------

  // Under an access control list (--acl-file) the server says whom it
  // takes this page's user for and what that identity may do; actions it
  // may not use are hidden rather than offered only to fail.
  async function showWhoAmI() {
    let me;
    try {
      me = await api("GET", "api/v1/whoami");
    } catch (_) {
      return;
    }
    document.body.classList.toggle("read-only", !me.write);
    // A cancel needs admin = write, or invoke of the job's function.
    document.body.classList.toggle("no-cancel", !me.write && me.invoke == null);
    if (!me.acl) return;
    const rights = me.write ? "read and write" : me.read ? "read-only" : "no dashboard rights";
    const who = $("whoami");
    who.textContent = me.identity + " (" + rights + ")";
    const via = { operator_token: "the --web-token", certificate: "client certificate", token: "web token", network: "network address" };
    who.title =
      "Identified by " + (via[me.via] || me.via) + (me.invoke ? "; may submit to " + me.invoke : "; may submit no jobs");
    who.hidden = false;
  }

  // ---- start ------------------------------------------------------------

  function start() {
    $("lookup-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const handle = $("lookup-handle").value.trim();
      const fn = $("lookup-function").value.trim();
      const unique = $("lookup-unique").value;
      if (handle) lookUp(handle);
      else if (fn && unique) lookUp("", fn, unique);
      else {
        $("lookup-result").replaceChildren(
          element("p", { className: "bad", textContent: "Give a handle, or a function and a unique." }),
        );
      }
    });
    $("recent-form").addEventListener("submit", (event) => {
      event.preventDefault();
      showRecent();
    });
    window.addEventListener("resize", drawChart);
    showWhoAmI();
    setInterval(() => setLive(Date.now() - lastEventAt < STALE_MS), 1000);
    drawChart();
    showRecent();
    refreshLists();
    setInterval(refreshLists, LISTS_EVERY_MS);
    connect();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
