// The local stack's inspector: polls the JSON API beside it (/_local/api/...) and draws four
// tables. No framework, no build step: what a developer reads when something looks wrong.

const API = "/_local/api";
const REFRESH_MS = 1000;
const EVENTS_SHOWN = 300;

const $ = (testId) => document.querySelector(`[data-testid="${testId}"]`);

async function getJson(path) {
  const response = await fetch(`${API}/${path}`, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function cell(text, className = "") {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  return td;
}

function row(cells, attributes = {}) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  Object.assign(tr.dataset, attributes);
  return tr;
}

function seconds(value) {
  if (value < 60) return `${value.toFixed(1)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${Math.round(value - minutes * 60)} s`;
}

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], { hour12: false });
}

// -- connections, with their two actions

async function act(connectionId, action) {
  const response = await fetch(`${API}/connections/${encodeURIComponent(connectionId)}/${action}`, { method: "POST" });
  if (response.status === 410) showStatus(`${connectionId} was already closed`);
  else if (!response.ok) showStatus(`${action} ${connectionId}: HTTP ${response.status}`);
  refresh();
}

function actionButton(label, testId, connectionId, action) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.dataset.testid = testId;
  button.addEventListener("click", () => {
    button.disabled = true;
    act(connectionId, action);
  });
  return button;
}

function drawConnections({ connections }) {
  $("connection-count").textContent = String(connections.length);
  const rows = connections.map((connection) => {
    const actions = cell("");
    actions.append(
      actionButton("Drop", "drop", connection.connectionId, "drop"),
      actionButton("Make stale", "stale", connection.connectionId, "stale"),
    );
    return row(
      [
        cell(connection.user),
        cell(connection.connectionId),
        cell(seconds(connection.ageSeconds), "number"),
        cell(seconds(connection.idleSeconds), "number"),
        actions,
      ],
      { testid: "connection", connectionId: connection.connectionId, user: connection.user },
    );
  });
  $("connections").replaceChildren(...rows);
}

// -- events and management calls, newest first

function drawEvents({ events }) {
  const rows = events.map((event) =>
    row(
      [
        cell(clock(event.at)),
        cell(event.user),
        cell(event.connectionId),
        cell(event.kind),
        cell(event.status === null ? "running" : String(event.status), "number"),
        cell(event.durationMs === null ? "" : event.durationMs.toFixed(1), "number"),
        cell(event.error),
      ],
      { testid: "event", kind: event.kind, connectionId: event.connectionId, status: String(event.status ?? "") },
    ),
  );
  rows.forEach((tr, index) => tr.classList.toggle("failed", (events[index].status ?? 200) >= 400));
  $("events").replaceChildren(...rows);
}

function drawManagementCalls({ calls }) {
  const rows = calls.map((call) => {
    const tr = row(
      [
        cell(clock(call.at)),
        cell(call.method),
        cell(call.connectionId),
        cell(String(call.status), "number"),
        cell(call.durationMs.toFixed(1), "number"),
        cell(String(call.bytes), "number"),
      ],
      { testid: "management-call", method: call.method, connectionId: call.connectionId, status: String(call.status) },
    );
    tr.classList.toggle("failed", call.status >= 400);
    return tr;
  });
  $("management-calls").replaceChildren(...rows);
}

// -- the table browser: one scan page at a time

const browser = { table: null, next: null };

async function loadTables() {
  const { tables } = await getJson("tables");
  $("table-select").replaceChildren(
    ...tables.map((table) => {
      const option = document.createElement("option");
      option.value = table.logicalId;
      option.textContent = `${table.logicalId} (${table.name})`;
      return option;
    }),
  );
}

async function scan(start = null) {
  browser.table = $("table-select").value;
  const query = new URLSearchParams({ limit: "25" });
  if (start) query.set("start", start);
  const page = await getJson(`tables/${encodeURIComponent(browser.table)}?${query}`);
  browser.next = page.next;
  $("table-next").disabled = !page.next;
  drawItems(page);
}

function drawItems(page) {
  const names = [...new Set(page.items.flatMap((item) => Object.keys(item)))];
  const head = row(names.map((name) => {
    const th = document.createElement("th");
    th.textContent = name;
    return th;
  }));
  $("table-head").replaceChildren(head);
  const rows = page.items.map((item) =>
    row(names.map((name) => cell(name in item ? JSON.stringify(item[name]) : "")), { testid: "table-item" }),
  );
  $("table-items").replaceChildren(...rows);
  $("table-summary").textContent = `${page.table}: ${page.items.length} items on this page${page.next ? ", more after" : ""}`;
}

// -- refreshing

function showStatus(text) {
  $("inspector-status").textContent = text;
}

async function refresh() {
  try {
    const [connections, events, calls] = await Promise.all([
      getJson("connections"),
      getJson(`events?limit=${EVENTS_SHOWN}`),
      getJson("management"),
    ]);
    drawConnections(connections);
    drawEvents(events);
    drawManagementCalls(calls);
    if ($("inspector-status").textContent.startsWith("The stack")) showStatus("");
  } catch (error) {
    showStatus(`The stack does not answer (${error.message}); retrying.`);
  }
}

function main() {
  $("table-form").addEventListener("submit", (event) => {
    event.preventDefault();
    scan().catch((error) => showStatus(`scan: ${error.message}`));
  });
  $("table-next").addEventListener("click", () => scan(browser.next).catch((error) => showStatus(`scan: ${error.message}`)));
  loadTables().catch((error) => showStatus(`tables: ${error.message}`));
  refresh();
  setInterval(refresh, REFRESH_MS);
}

main();
