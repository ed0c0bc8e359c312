// Live updates: a WebSocket-only Socket.IO connection (the server serves no long-polling),
// authenticated by the session cookie. On each new run the page re-reads its figures.
(function () {
  "use strict";
  const dataUrl = document.currentScript.dataset.url;
  const live = document.getElementById("live");

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    return td;
  }

  function fill(id, rows, columns, emptyText) {
    const body = document.getElementById(id);
    body.replaceChildren();
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = cell(emptyText);
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      if (row.status) tr.className = row.status;
      for (const column of columns) tr.appendChild(cell(column(row)));
      body.appendChild(tr);
    }
  }

  function percent(rate) {
    return rate === null ? "–" : (rate * 100).toFixed(1) + " %";
  }

  async function refresh() {
    const response = await fetch(dataUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    fill("summary", data.summary.suites, [
      (s) => s.suite, (s) => s.runs, (s) => s.runs_failed,
      (s) => s.checks_passed + " / " + s.checks, (s) => percent(s.pass_rate),
    ], "No runs in this window.");
    fill("failures", data.failures, [
      (r) => r.id, (r) => r.suite, (r) => r.started_at, (r) => r.failed, (r) => r.errored,
    ], "No failed runs.");
    fill("latest", data.latest, [
      (r) => r.id, (r) => r.suite, (r) => r.status, (r) => r.started_at,
      (r) => r.passed + " / " + r.total,
    ], "No runs yet.");
  }

  let pending = null;
  function scheduleRefresh() {
    // Several runs posted at once cause one refresh, not one each.
    if (pending === null) pending = setTimeout(() => { pending = null; refresh(); }, 250);
  }

  function setLive(on) {
    live.textContent = on ? "live" : "offline";
    live.className = on ? "live on" : "live off";
  }

  const socket = io({ transports: ["websocket"] });
  socket.on("connect", () => { setLive(true); scheduleRefresh(); });
  socket.on("disconnect", () => setLive(false));
  socket.on("run_created", scheduleRefresh);
})();
