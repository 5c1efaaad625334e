// The airlock in the browser: a researcher's requests, a checker's queue and evidence-first
// review, all through the API (the page never reads storage for a preview).
//
// Safety rule for everything below: researcher content (file names, cells, texts, comments,
// titles) only ever reaches the page as text (`textContent`, via `h`), never as markup; the
// page has no `innerHTML`. Images come as PNG/JPEG bytes the API sniffed, shown from a blob:
// URL. The Content-Security-Policy runs only this file and auth.js.

import * as auth from "./auth.js";

const main = document.getElementById("main");
const statusLine = document.getElementById("status");
let config = null; // { signIn: { authority, clientId, apiScope } }
let workspaces = []; // [{ id, displayName, tokenAudience, scope }]
let me = null; // claims of the API token

// ---------------------------------------------------------------- small helpers

/** An element with attributes and children; strings become text nodes, never markup. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function say(text) {
  statusLine.textContent = text;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus({ preventScroll: true });
}

function failure(e) {
  return h("p", { class: "error", role: "alert" }, String(e && e.message ? e.message : e));
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function age(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 90) return "just now";
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

/** How long ago, in words ("just now", "5 min ago"). */
function ago(iso) {
  const a = age(iso);
  return a === "just now" ? a : `${a} ago`;
}

const STATUS_CLASS = {
  approved: "ok",
  in_review: "info",
  draft: "info",
  rejected: "bad",
  blocked_by_scan: "bad",
  failed: "bad",
  cancelled: "warn",
  revoked: "warn",
};

function statusBadge(status) {
  return h("span", { class: `badge ${STATUS_CLASS[status] || "info"}` }, status.replace(/_/g, " "));
}

const DECISION_WORDS = {
  approved: "approve",
  rejected: "reject",
  changes_requested: "request changes",
};

function workspace(id) {
  return workspaces.find((w) => w.id === id);
}

/** Calls the API for a workspace (or the TRE-wide API) with a JSON body: the response when it
 * succeeded, else an error in the airlock's words. */
async function apiResponse(ws, method, path, body, headers = {}) {
  const scope = ws ? workspace(ws)?.scope : config.signIn.apiScope;
  if (!scope) throw new Error(`unknown workspace ${ws}`);
  const token = await auth.token(config.signIn, scope);
  const response = await fetch(`/api${path}`, {
    method,
    headers: {
      ...headers,
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const answer = await response.json().catch(() => null);
    const refused = new Error(answer?.error?.message || `${method} ${path}: ${response.status}`);
    refused.status = response.status;
    throw refused;
  }
  return response;
}

/** Calls the API: JSON in, JSON out, errors in words. */
async function api(ws, method, path, body, headers) {
  const response = await apiResponse(ws, method, path, body, headers);
  if (response.status === 204) return null;
  return response.json().catch(() => null);
}

/** The page address of a request (and of one of its files). */
function requestHref(ws, id, file) {
  const base = `#/r/${encodeURIComponent(ws)}/${encodeURIComponent(id)}`;
  return file === undefined ? base : `${base}/file/${encodeURIComponent(file)}`;
}

function requestPath(ws, id, tail = "") {
  return `/workspaces/${encodeURIComponent(ws)}/requests/${encodeURIComponent(id)}${tail}`;
}

function hasRole(role) {
  return Array.isArray(me?.roles) && me.roles.includes(role);
}

// ---------------------------------------------------------------- start

async function start() {
  try {
    config = await (await fetch("config.json")).json();
  } catch (e) {
    show(failure(`could not load the page's settings: ${e}`));
    return;
  }
  if (!config.signIn) {
    show(
      h("h1", {}, "Airlock"),
      h(
        "p",
        { class: "error", role: "alert" },
        "Sign-in is not set up for this airlock (AIRLOCK_WEB_AUTHORITY and AIRLOCK_WEB_CLIENT_ID). The command line works without it: see docs/cli.md.",
      ),
    );
    return;
  }
  try {
    const next = await auth.completeSignIn(config.signIn);
    if (next) location.hash = next;
  } catch (e) {
    show(h("h1", {}, "Airlock"), failure(e), signInButton());
    return;
  }
  if (!auth.signedIn()) {
    show(
      h("h1", {}, "Airlock"),
      h("p", {}, "Export results from your workspace, import data into it, and review what crosses."),
      signInButton(),
    );
    return;
  }
  try {
    me = auth.claims(await auth.token(config.signIn, config.signIn.apiScope));
    workspaces = (await api(null, "GET", "/workspaces")).workspaces;
  } catch (e) {
    show(h("h1", {}, "Airlock"), failure(e), signInButton());
    return;
  }
  renderAccount();
  window.addEventListener("hashchange", route);
  await route();
}

function signInButton() {
  return h(
    "button",
    { type: "button", onclick: () => auth.signIn(config.signIn, location.hash || "#/") },
    "Sign in",
  );
}

function renderAccount() {
  const nav = document.getElementById("account");
  nav.replaceChildren(
    h("span", {}, `${me.name || me.oid} · ${(me.roles || []).join(", ") || "no roles"}`),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          auth.signOut();
          location.hash = "#/";
          location.reload();
        },
      },
      "Sign out",
    ),
  );
}

async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "r" && parts.length >= 3) {
      if (parts[3] === "file") return await fileView(parts[1], parts[2], parts.slice(4).join("/"));
      return await requestView(parts[1], parts[2]);
    }
    if (parts[0] === "new" && parts[1]) return newRequestView(parts[1], parts[2] || "export");
    return await homeView();
  } catch (e) {
    show(failure(e), h("p", {}, h("a", { href: "#/" }, "Back to your requests")));
  }
}

// ---------------------------------------------------------------- home: queue and requests

async function homeView() {
  document.title = "Airlock";
  say("Loading your requests…");
  const sections = [];
  const awaiting = [];
  const waiting = []; // reviewed by me, waiting for the other reviewers
  const returned = []; // mine, sent back for changes
  const approved = []; // approved in the last 14 days, mine or reviewed by me
  for (const ws of workspaces) {
    let page;
    try {
      page = await api(ws.id, "GET", `/workspaces/${encodeURIComponent(ws.id)}/requests?pageSize=100`);
    } catch (e) {
      sections.push(h("section", {}, h("h2", {}, ws.displayName), failure(e)));
      continue;
    }
    const items = page.airlockRequests;
    for (const item of items) {
      const r = item.airlockRequest;
      if (item.allowedUserActions.includes("review")) awaiting.push({ ws, item });
      else if (r.status === "in_review" && r.reviews.some((v) => v.reviewer?.id === me.oid && v.revision === r.revision)) {
        waiting.push({ ws, item });
      }
      if (r.createdBy?.id === me.oid && r.status === "draft" && r.revision > 1) returned.push({ ws, item });
      if (r.status === "approved" && Date.now() - new Date(r.updatedAt).getTime() < 14 * 86400_000) {
        const mine = r.createdBy?.id === me.oid || r.reviews.some((v) => v.reviewer?.id === me.oid);
        if (mine) approved.push({ ws, item });
      }
    }
    const researcher = hasRole("WorkspaceResearcher") || hasRole("WorkspaceOwner");
    sections.push(
      h(
        "section",
        { "aria-labelledby": `ws-${ws.id}` },
        h("h2", { id: `ws-${ws.id}` }, ws.displayName),
        researcher
          ? h(
              "p",
              { class: "row" },
              h("a", { class: "button", href: `#/new/${encodeURIComponent(ws.id)}/export` }, "New export"),
              h("a", { class: "button", href: `#/new/${encodeURIComponent(ws.id)}/import` }, "New import"),
            )
          : null,
        requestTable(ws, items, "No requests yet."),
      ),
    );
  }
  const queue = h(
    "section",
    { "aria-labelledby": "queue" },
    h("h2", { id: "queue" }, `Awaiting my review (${awaiting.length})`),
    awaiting.length
      ? h(
          "table",
          { class: "list" },
          h(
            "thead",
            {},
            h("tr", {}, h("th", {}, "Request"), h("th", {}, "Workspace"), h("th", {}, "Type"), h("th", {}, "Files"), h("th", {}, "Waiting"), h("th", {}, "Reviews"), h("th", {}, "My votes")),
          ),
          h(
            "tbody",
            {},
            awaiting.map(({ ws, item }) => {
              const r = item.airlockRequest;
              return h(
                "tr",
                {},
                h("td", {}, h("a", { href: requestHref(ws.id, r.id) }, r.title)),
                h("td", {}, ws.displayName),
                h("td", {}, r.type),
                h("td", {}, String(r.files.length)),
                h("td", { class: "waiting", title: `in review since ${new Date(r.statusSince || r.updatedAt).toLocaleString()}` }, age(r.statusSince || r.updatedAt)),
                h("td", {}, `${r.reviews.filter((v) => v.revision === r.revision).length} of ${r.reviewQuorum || 1} (yours pending)`),
                h("td", {}, `${Object.keys(votesFor(r).get()).length} of ${r.files.length} files`),
              );
            }),
          ),
        )
      : h("p", { class: "muted" }, hasRole("AirlockManager") ? "Nothing is waiting for you." : "You review nothing here (no airlock manager role)."),
  );
  /** A list of requests under a heading, each with a word about it; nothing when empty. */
  const section = (id, title, items, about) =>
    items.length
      ? h(
          "section",
          { "aria-labelledby": id },
          h("h2", { id }, `${title} (${items.length})`),
          h(
            "ul",
            {},
            items.map(({ ws, item }) =>
              h("li", {}, h("a", { href: requestHref(ws.id, item.airlockRequest.id) }, item.airlockRequest.title), ` · ${ws.displayName} · ${about(item.airlockRequest)}`),
            ),
          ),
        )
      : null;
  const also = [
    section("waiting", "Reviewed by me, waiting for others", waiting, (r) => `waiting ${age(r.statusSince || r.updatedAt)}`),
    section("returned", "Returned to me for changes", returned, (r) => `revision ${r.revision}`),
    section("approved", "Approved in the last two weeks", approved, (r) => ago(r.updatedAt)),
  ];
  show(h("h1", {}, "Requests"), queue, ...also.filter(Boolean), ...sections);
  say(`${awaiting.length} waiting for your review`);
}

function requestTable(ws, items, empty) {
  if (!items.length) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    { class: "list" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, "Title"), h("th", {}, "Type"), h("th", {}, "Status"), h("th", {}, "Revision"), h("th", {}, "Created by"), h("th", {}, "Updated")),
    ),
    h(
      "tbody",
      {},
      items.map(({ airlockRequest: r }) =>
        h(
          "tr",
          {},
          h("td", {}, h("a", { href: requestHref(ws.id, r.id) }, r.title)),
          h("td", {}, r.type),
          h("td", {}, statusBadge(r.status)),
          h("td", {}, String(r.revision || "—")),
          h("td", {}, r.createdBy?.name || r.createdBy?.id),
          h("td", {}, ago(r.updatedAt)),
        ),
      ),
    ),
  );
}

/** Names what a form makes with an `Idempotency-Key`: the same key while the body is the
 * same, so a click again after an answer that never came is answered with what the first
 * click made (not a second one); a changed body is a new thing, with a new key. */
function oneKeyPerBody() {
  let key = null;
  let keyedBody = null;
  return (body) => {
    const text = JSON.stringify(body);
    if (text !== keyedBody) {
      keyedBody = text;
      // randomUUID needs a secure context; getRandomValues does not (a page served over
      // plain HTTP on a lab network still works).
      key = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    }
    return { "idempotency-key": `"${key}"` };
  };
}

// ---------------------------------------------------------------- a new request

function newRequestView(ws, type) {
  document.title = `New ${type} · Airlock`;
  const title = h("input", { type: "text", id: "title", required: true, maxlength: 200, size: 60 });
  const why = h("textarea", { id: "justification", required: true, maxlength: 4000 });
  const create = h("button", { type: "submit" }, `Create the ${type} request`);
  const keyed = oneKeyPerBody();
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        if (create.disabled) return;
        const body = { type, title: title.value, businessJustification: why.value };
        create.disabled = true;
        form.querySelectorAll(".error").forEach((f) => f.remove());
        try {
          say("Creating the request…");
          const made = await api(ws, "POST", `/workspaces/${encodeURIComponent(ws)}/requests`, body, keyed(body));
          location.hash = requestHref(ws, made.airlockRequest.id);
        } catch (e) {
          form.append(failure(e));
        } finally {
          create.disabled = false;
        }
      },
    },
    h("p", {}, h("label", { for: "title" }, "Title"), h("br"), title),
    h("p", {}, h("label", { for: "justification" }, "Why these data need to cross"), h("br"), why),
    create,
  );
  show(
    h("p", {}, h("a", { href: "#/" }, "← Requests")),
    h("h1", {}, `New ${type} in ${workspace(ws)?.displayName || ws}`),
    form,
  );
  title.focus();
}

// ---------------------------------------------------------------- a request

/** This reviewer's votes on this revision's files, kept in this tab until sent. */
function votesFor(r) {
  const key = `airlock.votes.${r.id}.${r.revision}`;
  return {
    get: () => JSON.parse(sessionStorage.getItem(key) || "{}"),
    set(name, decision) {
      const v = this.get();
      v[name] = decision;
      sessionStorage.setItem(key, JSON.stringify(v));
    },
    clear: () => sessionStorage.removeItem(key),
  };
}

/** A changed table, cell by cell (rows matched by their labels), folded under its file. */
function tableChanges(t) {
  const total = t.cellsChanged + t.rowsAddedCount + t.rowsRemovedCount + (t.columnsAdded || []).length + (t.columnsRemoved || []).length;
  const items = [
    ...(t.cells || []).map((c) => `${c.row} · ${c.column}: ${c.before} → ${c.after}`),
    ...(t.rowsAdded || []).map((r) => `new row: ${r}`),
    ...(t.rowsRemoved || []).map((r) => `row removed: ${r}`),
    ...(t.columnsAdded || []).map((c) => `new column: ${c}`),
    ...(t.columnsRemoved || []).map((c) => `column removed: ${c}`),
  ];
  const listed = (t.cells || []).length + (t.rowsAdded || []).length + (t.rowsRemoved || []).length + (t.columnsAdded || []).length + (t.columnsRemoved || []).length;
  return h(
    "details",
    { class: "table-changes" },
    h("summary", {}, total ? `${total} change(s) in the table` : "no cell changed"),
    h("ul", {}, items.map((x) => h("li", {}, x))),
    total > listed ? h("p", { class: "muted" }, `and ${total - listed} more`) : null,
    t.complete ? null : h("p", { class: "muted" }, "Only the first rows were compared: the table is larger than the airlock keeps."),
  );
}

/** ACRO's verdict on the output a file belongs to, from the researcher's ACRO record. */
function acroBadge(acro) {
  const tone = acro.status === "pass" ? "ok" : acro.status === "fail" && !acro.exception ? "bad" : "warn";
  const words = acro.status === "fail" && acro.exception ? "fail, exception given" : acro.status;
  return h("span", { class: `badge ${tone}`, title: `ACRO output ${acro.uid}` }, `ACRO: ${words}`);
}

/** The ACRO record's evidence on a file, for the file page's facts. */
function acroFacts(acro) {
  const checks = Object.entries(acro.failedChecks || {}).map(([check, cells]) => `${check}: ${cells} cell(s)`);
  return [
    h("dt", {}, "ACRO"),
    h(
      "dd",
      {},
      acroBadge(acro),
      ` ${acro.uid} (${acro.type})`,
      checks.length ? h("div", {}, `Flagged: ${checks.join(", ")}`) : null,
      acro.exception ? h("div", {}, `Researcher's exception: ${acro.exception}`) : null,
      (acro.comments || []).map((c) => h("div", { class: "muted" }, `Comment: ${c}`)),
      acro.summary ? h("pre", { class: "muted acro-summary" }, acro.summary) : null,
    ),
  ];
}

function gateState(file) {
  const findings = file.findings || [];
  if (findings.some((f) => f.mode === "block")) return h("span", { class: "badge bad" }, `blocked · ${findings.length} finding(s)`);
  if (findings.some((f) => f.mode === "warn")) return h("span", { class: "badge warn" }, `warning · ${findings.length} finding(s)`);
  if (file.sha256) return h("span", { class: "badge ok" }, "no findings");
  return h("span", { class: "muted" }, "not checked yet");
}

function scanState(file) {
  if (!file.scan) return h("span", { class: "muted" }, "—");
  const clean = file.scan.result === "No threats found";
  return h("span", { class: `badge ${clean ? "ok" : "bad"}` }, clean ? "clean" : file.scan.result);
}

async function requestView(ws, id) {
  say("Loading the request…");
  const envelope = await api(ws, "GET", requestPath(ws, id));
  const r = envelope.airlockRequest;
  const actions = envelope.allowedUserActions;
  document.title = `${r.title} · Airlock`;
  const votes = votesFor(r);
  const mine = votes.get();
  const canReview = actions.includes("review");
  // What changed since the last revision this reviewer decided: their votes on unchanged
  // files carry over (the airlock records them as carried), so only the rest need a vote.
  let carried = {};
  let changes = {};
  if (r.revision > 1) {
    try {
      const diff = await api(ws, "GET", requestPath(ws, id, "/diff"));
      for (const f of diff.sinceYourVote?.files || diff.sincePrevious || []) changes[f.name] = f;
      if (canReview) {
        for (const f of diff.sinceYourVote?.files || []) {
          if (f.change === "identical" && f.yourDecision) carried[f.name] = f.yourDecision;
        }
      }
    } catch {
      changes = {};
    }
  }
  const fileLink = (f) =>
    h("a", { href: requestHref(ws, id, f.name) }, f.name);
  const files = h(
    "table",
    { class: "list", "aria-label": "Files" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "File"),
        h("th", {}, "Size"),
        h("th", {}, "Malware scan"),
        h("th", {}, "Gates"),
        h("th", {}, canReview ? "Your vote" : "Decision"),
        h("th", {}, "What it is"),
      ),
    ),
    h(
      "tbody",
      {},
      r.files.map((f) =>
        h(
          "tr",
          {},
          h(
            "td",
            {},
            fileLink(f),
            changes[f.name] ? [" ", h("span", { class: `badge ${changes[f.name].change === "identical" ? "ok" : "warn"}` }, changes[f.name].change === "identical" ? "unchanged" : changes[f.name].change)] : null,
            changes[f.name]?.table ? tableChanges(changes[f.name].table) : null,
            f.sha256 ? h("div", { class: "muted" }, `sha256 ${f.sha256.slice(0, 12)}…`) : null,
          ),
          h("td", {}, bytes(f.size)),
          h("td", {}, scanState(f)),
          h("td", {}, gateState(f), f.justification ? h("div", {}, `Justified: ${f.justification.text}`) : null),
          h(
            "td",
            {},
            canReview
              ? mine[f.name]
                ? h("span", { class: `badge ${mine[f.name] === "approved" ? "ok" : "warn"}` }, DECISION_WORDS[mine[f.name]])
                : carried[f.name]
                  ? h("span", { class: "badge ok" }, `${DECISION_WORDS[carried[f.name]]} (carried over)`)
                  : h("span", { class: "muted" }, "not yet")
              : f.decision
                ? h("span", { class: "badge info" }, f.decision.replace(/_/g, " "))
                : "—",
          ),
          h(
            "td",
            {},
            f.supporting ? h("span", { class: "badge info" }, "supporting: reviewed, not released") : null,
            f.acro ? acroBadge(f.acro) : null,
            f.description || "",
            f.disclosureControls ? h("div", { class: "muted" }, `Controls: ${f.disclosureControls}`) : null,
          ),
        ),
      ),
    ),
  );
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Status"),
    h("dd", {}, statusBadge(r.status), r.statusMessage ? ` ${r.statusMessage}` : ""),
    h("dt", {}, "Type"),
    h("dd", {}, r.type),
    h("dt", {}, "Workspace"),
    h("dd", {}, workspace(ws)?.displayName || ws),
    h("dt", {}, "Created by"),
    h("dd", {}, `${r.createdBy?.name || r.createdBy?.id}, ${new Date(r.createdAt).toLocaleString()}`),
    h("dt", {}, "Revision"),
    h("dd", {}, String(r.revision)),
    h("dt", {}, "Justification"),
    h("dd", {}, r.businessJustification),
    r.purpose ? [h("dt", {}, "Purpose"), h("dd", {}, r.purpose)] : null,
    r.reviewQuorum ? [h("dt", {}, "Reviews needed"), h("dd", {}, `${r.reviewQuorum} independent (blinded until all are in)`)] : null,
  );
  const parts = [
    h("p", {}, h("a", { href: "#/" }, "← Requests")),
    h("h1", {}, r.title),
    h("div", { class: "row" }, h("div", { class: "grow" }, facts)),
  ];
  if (r.status === "draft" && actions.includes("submit")) parts.push(uploadPanel(ws, r));
  parts.push(h("h2", {}, `Files (${r.files.length})`));
  parts.push(r.files.length ? files : h("p", { class: "muted" }, "Files are listed here once the request is submitted."));
  if (canReview) parts.push(reviewPanel(ws, r, votes, carried));
  if (r.status === "approved" && actions.includes("link")) parts.push(downloadPanel(ws, r));
  if (r.status === "in_review" && actions.includes("justify")) parts.push(justifyPanel(ws, r));
  const gates = h("section", { "aria-labelledby": "gates" }, h("h2", { id: "gates" }, "Gate report"), h("p", { class: "muted" }, "Loading…"));
  const history = h("section", { "aria-labelledby": "history" }, h("h2", { id: "history" }, "History"), h("p", { class: "muted" }, "Loading…"));
  parts.push(gates, commentsPanel(ws, r, actions), history);
  if (FINISHED.includes(r.status)) parts.push(recordPanel(ws, r));
  if (actions.includes("cancel")) {
    parts.push(
      h(
        "p",
        {},
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: async () => {
              if (await confirmDialog("Cancel this request? Its files are deleted and it cannot be undone.")) {
                await act(ws, r, "cancel");
              }
            },
          },
          "Cancel the request",
        ),
      ),
    );
  }
  show(...parts);
  say(`${r.title}: ${r.status.replace(/_/g, " ")}`);
  loadGates(ws, r, gates);
  loadHistory(ws, r, history);
  follow(ws, r);
}

/** The statuses a request ends in: its governance record can be saved. */
const FINISHED = ["approved", "rejected", "blocked_by_scan", "cancelled", "failed", "revoked"];
const RECORD_FORMATS = [
  { format: "html", label: "Save the record page (HTML, print-ready)", file: (id) => `record-${id}.html` },
  { format: "json", label: "Save the record (JSON, verifiable offline)", file: (id) => `record-${id}.json` },
  { format: "ro-crate", label: "Save as a Five Safes RO-Crate", file: () => "ro-crate-metadata.json" },
];

/** The governance record of a finished request, saved as a file in each form: what was
 * released, every check and decision, and the hash-chained trail (`airlock verify` checks
 * the JSON offline). A download, never opened here: it is a document to keep. */
function recordPanel(ws, r) {
  const status = h("p", { class: "muted", role: "status" });
  const save = async (form) => {
    try {
      status.textContent = "Making the record…";
      const response = await apiResponse(ws, "GET", requestPath(ws, r.id, `/record?format=${form.format}`));
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: form.file(r.id) });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      status.textContent = `Saved ${form.file(r.id)} (${bytes(blob.size)}).`;
    } catch (e) {
      status.textContent = `The record could not be made: ${e.message}`;
    }
  };
  return h(
    "section",
    { "aria-labelledby": "record" },
    h("h2", { id: "record" }, "Governance record"),
    h(
      "p",
      {},
      "Everything about this request in one document: the files and their sealed sha256, each gate's evidence, every vote, override and comment you may see, the policy versions, and the audit trail with what is needed to verify it offline (",
      h("code", {}, "airlock verify"),
      ").",
    ),
    h(
      "p",
      { class: "row" },
      RECORD_FORMATS.map((form) => h("button", { type: "button", class: "secondary", onclick: () => save(form) }, form.label)),
    ),
    status,
  );
}

/** While the airlock is working on a request (sealing, scanning, copying), the page follows
 * it: it reads the request again every few seconds until it settles. */
const WORKING = ["submitted", "approval_in_progress", "rejection_in_progress", "blocking_in_progress"];
function follow(ws, r) {
  if (!WORKING.includes(r.status)) return;
  const here = location.hash;
  say(`${r.title}: ${r.status.replace(/_/g, " ")}, the airlock is working on it…`);
  setTimeout(() => {
    if (location.hash === here && !document.querySelector("dialog[open]")) {
      requestView(ws, r.id).catch((e) => say(e.message));
    }
  }, 3000);
}

async function act(ws, r, action, body) {
  try {
    say(`${action}…`);
    await api(ws, "POST", requestPath(ws, r.id, `/${action}`), body);
    say(`${action}: done`);
    await requestView(ws, r.id);
  } catch (e) {
    // No answer (the network, a restarting Function App) does not mean nothing happened:
    // if the request has moved on since the page showed it, show it as it is now.
    const lost = !e.status || [502, 503, 504].includes(e.status);
    const now = lost ? await api(ws, "GET", requestPath(ws, r.id)).catch(() => null) : null;
    const moved = now && (now.airlockRequest.status !== r.status || now.airlockRequest.revision !== r.revision);
    if (moved) {
      await requestView(ws, r.id);
      const status = now.airlockRequest.status.replace(/_/g, " ");
      say(`${action}: the airlock's answer was lost on the way; the request is now ${status}`);
      main.prepend(h("p", { class: "panel", role: "status" }, `The airlock's answer was lost on the way; the request is now ${status}.`));
      return;
    }
    say(`${action}: ${e.message}`);
    main.prepend(failure(e));
  }
}

async function loadGates(ws, r, section) {
  try {
    const report = await api(ws, "GET", requestPath(ws, r.id, "/gates"));
    section.replaceChildren(
      h("h2", { id: "gates" }, "Gate report"),
      h(
        "table",
        { class: "list" },
        h("thead", {}, h("tr", {}, h("th", {}, "Gate"), h("th", {}, "State"), h("th", {}, "Findings"))),
        h(
          "tbody",
          {},
          report.gates.map((g) => {
            const findings = (g.files || []).flatMap((f) => (f.findings || []).map((x) => ({ file: f.name, ...x })));
            const cls = { passed: "ok", warned: "warn", blocked: "bad" }[g.state] || "info";
            return h(
              "tr",
              {},
              h("td", {}, g.name),
              h("td", {}, h("span", { class: `badge ${cls}` }, g.state)),
              h(
                "td",
                {},
                findings.length
                  ? h(
                      "ul",
                      { class: "plain" },
                      findings.slice(0, 20).map((x) => h("li", {}, `${x.file}: ${x.message}${x.location ? ` (${x.location})` : ""}`)),
                    )
                  : h("span", { class: "muted" }, "none"),
              ),
            );
          }),
        ),
      ),
    );
  } catch (e) {
    section.replaceChildren(h("h2", { id: "gates" }, "Gate report"), failure(e));
  }
}

async function loadHistory(ws, r, section) {
  try {
    const trail = await api(ws, "GET", requestPath(ws, r.id, "/history"));
    section.replaceChildren(
      h("h2", { id: "history" }, "History"),
      h("p", {}, trail.verified ? h("span", { class: "badge ok" }, "✓ hash chain verified") : h("span", { class: "badge bad" }, "✗ hash chain does not verify")),
      h(
        "table",
        { class: "list" },
        h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Who"), h("th", {}, "What"), h("th", {}, "Status"), h("th", {}, "Details"))),
        h(
          "tbody",
          {},
          trail.history.map((e) =>
            h(
              "tr",
              {},
              h("td", {}, new Date(e.at).toLocaleString()),
              h("td", {}, e.by),
              h("td", {}, e.action),
              h("td", {}, e.to ? `${e.from || ""} → ${e.to}` : ""),
              h("td", {}, e.message || ""),
            ),
          ),
        ),
      ),
    );
  } catch (e) {
    section.replaceChildren(h("h2", { id: "history" }, "History"), failure(e));
  }
}

function commentsPanel(ws, r, actions) {
  const list = (r.comments || []).map((c) =>
    h(
      "div",
      { class: "comment" },
      h("strong", {}, c.by?.name || c.by?.id),
      h("span", { class: "muted" }, ` · ${new Date(c.at).toLocaleString()}${c.file ? ` · on ${c.file}` : ""}${c.visibility === "reviewers" ? " · reviewers only" : ""}`),
      h("div", {}, c.text),
    ),
  );
  const text = h("textarea", { id: "comment-text", maxlength: 8000 });
  const keyed = oneKeyPerBody();
  const form = actions.includes("comment")
    ? h(
        "form",
        {
          onsubmit: async (event) => {
            event.preventDefault();
            if (!text.value.trim()) return;
            try {
              const body = { text: text.value };
              await api(ws, "POST", requestPath(ws, r.id, "/comments"), body, keyed(body));
              await requestView(ws, r.id);
            } catch (e) {
              form.append(failure(e));
            }
          },
        },
        h("label", { for: "comment-text" }, "Add a comment (shown as plain text)"),
        h("br"),
        text,
        h("br"),
        h("button", { type: "submit" }, "Comment"),
      )
    : null;
  return h(
    "section",
    { "aria-labelledby": "comments" },
    h("h2", { id: "comments" }, `Comments (${list.length})`),
    list.length ? list : h("p", { class: "muted" }, "No comments."),
    form,
  );
}

// ---------------------------------------------------------------- reviewing

/** The kinds of warning (rules) a file carries: approving it over them takes a reason each. */
function warnedRules(f) {
  return [...new Set((f.findings || []).filter((x) => x.mode === "warn").map((x) => x.rule))];
}

function reviewPanel(ws, r, votes, carried = {}) {
  const current = votes.get();
  const explanation = h("textarea", { id: "explanation", maxlength: 4000 });
  const reasons = new Map(); // file -> [{ rule, input }]
  const rows = r.files.map((f, index) => {
    const name = `vote-${f.name}`;
    const choice = (value, label) =>
      h(
        "label",
        { class: "muted" },
        h("input", {
          type: "radio",
          name,
          value,
          checked: current[f.name] === value,
          onchange: () => votes.set(f.name, value),
        }),
        ` ${label} `,
      );
    const rules = warnedRules(f);
    const inputs = rules.map((rule) => {
      const input = h("input", { type: "text", id: `override-${index}-${rule}`, size: 60, maxlength: 4000 });
      return { rule, input };
    });
    reasons.set(f.name, inputs);
    return h(
      "fieldset",
      {},
      h("legend", {}, f.name),
      carried[f.name] && !current[f.name]
        ? h("p", { class: "muted" }, `Unchanged since your vote: ${DECISION_WORDS[carried[f.name]]} carries over unless you decide again.`)
        : null,
      choice("approved", "Approve"),
      choice("rejected", "Reject"),
      choice("changes_requested", "Request changes"),
      inputs.length
        ? h(
            "div",
            {},
            h("p", { class: "muted" }, "To approve it over its warnings, say why for each kind:"),
            inputs.map(({ rule, input }) => h("p", {}, h("label", { for: input.id }, `Override ${rule}: `), input)),
          )
        : null,
    );
  });
  const send = h(
    "button",
    {
      type: "button",
      onclick: async () => {
        const chosen = votes.get();
        const missing = r.files.filter((f) => !chosen[f.name] && !carried[f.name]).map((f) => f.name);
        if (missing.length) {
          say(`Decide every file first: ${missing.join(", ")}`);
          main.prepend(failure(`Decide every file first: ${missing.join(", ")}`));
          return;
        }
        for (const f of r.files) {
          if (chosen[f.name] !== "approved") continue;
          // (a carried approval keeps the reasons given with it)
          const empty = reasons.get(f.name).find(({ input }) => !input.value.trim());
          if (empty) {
            empty.input.focus();
            say(`Approving ${f.name} over its ${empty.rule} warning needs a reason.`);
            return;
          }
        }
        const needsWhy = Object.values(chosen).some((d) => d !== "approved");
        if (needsWhy && !explanation.value.trim()) {
          explanation.focus();
          say("A rejection or a request for changes needs an explanation.");
          return;
        }
        const overridesOf = (f) =>
          chosen[f.name] === "approved" ? reasons.get(f.name).map(({ rule, input }) => ({ rule, rationale: input.value.trim() })) : [];
        const summary = r.files
          .map((f) =>
            chosen[f.name]
              ? `${f.name}: ${DECISION_WORDS[chosen[f.name]]}${overridesOf(f).map((o) => ` over ${o.rule}`).join("")}`
              : `${f.name}: ${DECISION_WORDS[carried[f.name]]} (carried over)`,
          )
          .join("\n");
        if (!(await confirmDialog(`Send this review of revision ${r.revision}? It cannot be taken back.\n\n${summary}`))) return;
        send.disabled = true;
        await act(ws, r, "review", {
          revision: r.revision,
          explanation: explanation.value.trim() || "Reviewed file by file.",
          // Files left undecided carry the vote given on their unchanged bytes.
          files: r.files
            .filter((f) => chosen[f.name])
            .map((f) => {
              const overrides = overridesOf(f);
              return overrides.length ? { name: f.name, decision: chosen[f.name], overrides } : { name: f.name, decision: chosen[f.name] };
            }),
        });
        votes.clear();
      },
    },
    "Send my review",
  );
  return h(
    "section",
    { class: "panel", "aria-labelledby": "review" },
    h("h2", { id: "review" }, "Your review"),
    r.reviewQuorum > 1
      ? h("p", { class: "muted" }, "Blinded: you see only your own review until every independent reviewer has sent theirs.")
      : null,
    h("p", {}, "Open each file to see it with its findings; decide each one here or there (keys a, r, c)."),
    r.files.some((f) => !(f.findings || []).length)
      ? h(
          "p",
          {},
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              onclick: () => {
                // One click for the files nothing was found in; each is still its own vote.
                for (const f of r.files.filter((f) => !(f.findings || []).length)) {
                  votes.set(f.name, "approved");
                  const radio = document.querySelector(`input[name="vote-${CSS.escape(f.name)}"][value="approved"]`);
                  if (radio) radio.checked = true;
                }
                say("Every file without findings is marked approve");
              },
            },
            `Approve the ${r.files.filter((f) => !(f.findings || []).length).length} file(s) without findings`,
          ),
        )
      : null,
    rows,
    h("p", {}, h("label", { for: "explanation" }, "Explanation (required to reject or request changes)"), h("br"), explanation),
    send,
  );
}

function justifyPanel(ws, r) {
  const flagged = r.files.filter((f) => (f.findings || []).some((x) => x.needsJustification));
  if (!flagged.length) return null;
  return h(
    "section",
    { class: "panel", "aria-labelledby": "justify" },
    h("h2", { id: "justify" }, "Justify the warnings"),
    flagged.map((f) => {
      const text = h("textarea", { id: `justify-${f.name}`, maxlength: 4000 }, f.justification?.text || "");
      return h(
        "form",
        {
          onsubmit: async (event) => {
            event.preventDefault();
            await act(ws, r, "justify", { file: f.name, justification: text.value });
          },
        },
        h("label", { for: `justify-${f.name}` }, `Why the findings in ${f.name} are acceptable`),
        h("br"),
        text,
        h("br"),
        h("button", { type: "submit" }, "Send"),
      );
    }),
  );
}

/** A modal question with Confirm and Cancel; resolves to the answer. */
function confirmDialog(question) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { "aria-labelledby": "confirm-q" },
      h("p", { id: "confirm-q", style: null }, question),
      h(
        "form",
        { method: "dialog", class: "row" },
        h("button", { type: "submit", value: "yes" }, "Confirm"),
        h("button", { type: "submit", value: "no", class: "secondary" }, "Cancel"),
      ),
    );
    dialog.querySelector("#confirm-q").style.whiteSpace = "pre-wrap";
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// ---------------------------------------------------------------- a file, with its evidence

async function fileView(ws, id, name) {
  const envelope = await api(ws, "GET", requestPath(ws, id));
  const r = envelope.airlockRequest;
  const canReview = envelope.allowedUserActions.includes("review");
  const index = r.files.findIndex((f) => f.name === name);
  if (index < 0) throw new Error(`${name} is not a file of this request`);
  document.title = `${name} · Airlock`;
  say(`Loading ${name}…`);
  const started = performance.now();
  const preview = await api(ws, "GET", requestPath(ws, id, `/preview?file=${encodeURIComponent(name)}`));
  const votes = votesFor(r);
  const go = (i) => {
    if (i >= 0 && i < r.files.length) {
      location.hash = requestHref(ws, id, r.files[i].name);
    }
  };
  const voteButtons = canReview
    ? h(
        "div",
        { class: "votes", role: "group", "aria-label": `Your vote on ${name}` },
        ["approved", "rejected", "changes_requested"].map((d) =>
          h(
            "button",
            {
              type: "button",
              class: d === "approved" ? "" : "secondary",
              "aria-pressed": votes.get()[name] === d ? "true" : "false",
              onclick: (event) => {
                votes.set(name, d);
                for (const b of event.target.parentNode.children) b.setAttribute("aria-pressed", "false");
                event.target.setAttribute("aria-pressed", "true");
                say(`${name}: ${DECISION_WORDS[d]} (sent with your review)`);
              },
            },
            DECISION_WORDS[d][0].toUpperCase() + DECISION_WORDS[d].slice(1),
          ),
        ),
      )
    : null;
  const nav = h(
    "p",
    { class: "row" },
    h("a", { href: requestHref(ws, id) }, `← ${r.title}`),
    h("button", { type: "button", class: "secondary", disabled: index === 0, onclick: () => go(index - 1) }, "Previous file"),
    h("span", {}, `File ${index + 1} of ${r.files.length}`),
    h("button", { type: "button", class: "secondary", disabled: index === r.files.length - 1, onclick: () => go(index + 1) }, "Next file"),
  );
  const file = r.files[index];
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Size"),
    h("dd", {}, bytes(preview.size)),
    h("dt", {}, "sha256"),
    h("dd", {}, h("code", {}, preview.sha256 || "—")),
    h("dt", {}, "Malware scan"),
    h("dd", {}, scanState(file)),
    h("dt", {}, "Gates"),
    h("dd", {}, gateState(file)),
    file.description ? [h("dt", {}, "What it is"), h("dd", {}, file.description)] : null,
    file.disclosureControls ? [h("dt", {}, "Controls"), h("dd", {}, file.disclosureControls)] : null,
    file.justification ? [h("dt", {}, "Justification"), h("dd", {}, file.justification.text)] : null,
    file.acro ? acroFacts(file.acro) : null,
  );
  const findings = (preview.findings || []).length
    ? h(
        "section",
        { "aria-labelledby": "findings" },
        h("h2", { id: "findings" }, `Findings (${preview.findings.length})`),
        h(
          "ul",
          {},
          preview.findings.map((f) =>
            h(
              "li",
              {},
              h("span", { class: `badge ${f.mode === "block" ? "bad" : "warn"}` }, f.mode),
              ` ${f.gate} · ${f.rule}: ${f.message}${f.location ? ` (${f.location})` : ""} `,
              f.cell
                ? h(
                    "button",
                    {
                      type: "button",
                      class: "secondary",
                      onclick: () => document.querySelector(".grid-wrap")?.reveal(f.cell.row, f.cell.columnIndex),
                    },
                    `Show row ${f.cell.row}`,
                  )
                : null,
            ),
          ),
        ),
      )
    : null;
  const keys = h(
    "p",
    { class: "keys", id: "keys" },
    "Keys: ",
    h("kbd", {}, "j"),
    " next file · ",
    h("kbd", {}, "k"),
    " previous file",
    canReview ? [" · ", h("kbd", {}, "a"), " approve · ", h("kbd", {}, "r"), " reject · ", h("kbd", {}, "c"), " request changes"] : null,
  );
  const body = await renderPreview(ws, id, preview);
  show(
    nav,
    h("h1", {}, name),
    h("div", { class: "row" }, h("div", { class: "grow" }, preview.note ? h("p", { class: "muted" }, preview.note) : null, body), h("aside", { class: "side panel", "aria-label": "About this file" }, facts, voteButtons ? [h("h2", {}, "Your vote"), voteButtons] : null)),
    findings,
    keys,
  );
  say(`${name} shown in ${Math.round(performance.now() - started)} ms`);
  document.onkeydown = (event) => {
    if (event.target.closest("input, textarea, select, button, dialog") && event.key !== "Escape") return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "j") go(index + 1);
    else if (event.key === "k") go(index - 1);
    else if (canReview && ["a", "r", "c"].includes(event.key)) {
      const d = { a: "approved", r: "rejected", c: "changes_requested" }[event.key];
      voteButtons.children[["approved", "rejected", "changes_requested"].indexOf(d)].click();
    }
  };
}

async function renderPreview(ws, id, preview) {
  if (preview.kind === "table") return tableView(preview);
  if (preview.kind === "text") return h("pre", { class: "text", tabindex: 0, "aria-label": "File content" }, preview.text);
  if (preview.kind === "image") {
    const token = await auth.token(config.signIn, workspace(ws).scope);
    const response = await fetch(`/api${requestPath(ws, id, `/preview?file=${encodeURIComponent(preview.name)}&content=true`)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (!response.ok) return failure(`the image could not be loaded (${response.status})`);
    const blob = await response.blob();
    const type = blob.type === "image/png" || blob.type === "image/jpeg" ? blob.type : "application/octet-stream";
    const url = URL.createObjectURL(new Blob([blob], { type }));
    return h("img", { class: "preview", src: url, alt: `The image ${preview.name}` });
  }
  return h("p", { class: "muted" }, "This file is not shown here; its details are beside.");
}

const ROW_HEIGHT = 26;

/** A table with row numbers, sorting, hideable columns, flagged cells and virtual scrolling. */
function tableView(preview) {
  const columns = preview.columns.length ? preview.columns : (preview.rows[0]?.cells || []).map((_, i) => `column ${i + 1}`);
  const flags = new Map(); // "row:col" -> [finding]
  for (const f of preview.findings || []) {
    if (!f.cell) continue;
    const key = `${f.cell.row}:${f.cell.columnIndex}`;
    flags.set(key, [...(flags.get(key) || []), f]);
  }
  let rows = preview.rows.slice();
  const hidden = new Set();
  let sort = null; // { column, ascending }
  const wrap = h("div", { class: "grid-wrap", tabindex: 0, role: "region", "aria-label": `Table ${preview.name}, ${rows.length} rows` });
  const tip = h("div", { class: "tip", role: "tooltip", id: "cell-tip", hidden: true });
  document.body.querySelectorAll(".tip").forEach((t) => t.remove());
  document.body.append(tip);
  const table = h("table", { class: "grid", role: "grid", "aria-rowcount": String(rows.length + 1) });
  const thead = h("thead");
  const tbody = h("tbody");
  table.append(thead, tbody);
  const spacer = h("div");
  wrap.append(table, spacer);

  const visible = () => columns.map((_, i) => i).filter((i) => !hidden.has(i));

  function renderHead() {
    thead.replaceChildren(
      h(
        "tr",
        { "aria-rowindex": "1" },
        h("th", { class: "rownum", scope: "col" }, "row"),
        visible().map((i) =>
          h(
            "th",
            { scope: "col", "aria-sort": sort?.column === i ? (sort.ascending ? "ascending" : "descending") : "none" },
            h(
              "button",
              {
                type: "button",
                class: "sort",
                title: `Sort by ${columns[i]}`,
                onclick: () => {
                  sort = { column: i, ascending: sort?.column === i ? !sort.ascending : true };
                  const numeric = rows.every((r) => r.cells[i] === undefined || r.cells[i] === "" || !Number.isNaN(Number(r.cells[i].replace(/,/g, ""))));
                  rows.sort((a, b) => {
                    const x = a.cells[i] ?? "";
                    const y = b.cells[i] ?? "";
                    const c = numeric ? Number(x.replace(/,/g, "")) - Number(y.replace(/,/g, "")) : x.localeCompare(y);
                    return sort.ascending ? c : -c;
                  });
                  renderHead();
                  renderBody();
                },
              },
              columns[i],
              sort?.column === i ? (sort.ascending ? " ▲" : " ▼") : "",
            ),
          ),
        ),
      ),
    );
  }

  function cell(row, i) {
    const value = row.cells[i] ?? "";
    const found = flags.get(`${row.row}:${i}`);
    if (!found) return h("td", {}, value);
    const worst = found.some((f) => f.mode === "block") ? "block" : "warn";
    const words = found.map((f) => `${f.gate} · ${f.rule}: ${f.message}`).join("; ");
    const td = h(
      "td",
      { class: `flag-${worst}`, tabindex: 0, "aria-label": `${value}. Flagged: ${words}`, "data-row": row.row, "data-col": i },
      value,
    );
    const showTip = () => {
      tip.textContent = words;
      tip.hidden = false;
      const box = td.getBoundingClientRect();
      tip.style.left = `${Math.min(box.left, window.innerWidth - 460)}px`;
      tip.style.top = `${box.bottom + 4}px`;
      td.setAttribute("aria-describedby", "cell-tip");
    };
    const hideTip = () => {
      tip.hidden = true;
      td.removeAttribute("aria-describedby");
    };
    td.addEventListener("mouseenter", showTip);
    td.addEventListener("focus", showTip);
    td.addEventListener("mouseleave", hideTip);
    td.addEventListener("blur", hideTip);
    return td;
  }

  let drawn = "";
  /** The cell `reveal` asked for, until a render has drawn and focused it. */
  let revealing = null;
  function renderBody(force = true) {
    const top = wrap.scrollTop;
    const height = wrap.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - 10);
    const last = Math.min(rows.length, first + Math.ceil(height / ROW_HEIGHT) + 20);
    // Scrolling within the rows already drawn draws nothing (and keeps the focus where it is).
    if (!force && drawn === `${first}:${last}`) return;
    drawn = `${first}:${last}`;
    const focused = wrap.contains(document.activeElement) ? document.activeElement.dataset : null;
    const shown = visible();
    const slice = rows.slice(first, last).map((row, k) =>
      h("tr", { "aria-rowindex": String(first + k + 2) }, h("td", { class: "rownum" }, String(row.row)), shown.map((i) => cell(row, i))),
    );
    tbody.replaceChildren(
      h("tr", { "aria-hidden": "true" }, h("td", { style: null, colspan: String(shown.length + 1), class: "pad-top" })),
      ...slice,
      h("tr", { "aria-hidden": "true" }, h("td", { colspan: String(shown.length + 1), class: "pad-bottom" })),
    );
    tbody.firstChild.firstChild.style.height = `${first * ROW_HEIGHT}px`;
    tbody.firstChild.firstChild.style.padding = "0";
    tbody.firstChild.firstChild.style.border = "0";
    tbody.lastChild.firstChild.style.height = `${(rows.length - last) * ROW_HEIGHT}px`;
    tbody.lastChild.firstChild.style.padding = "0";
    tbody.lastChild.firstChild.style.border = "0";
    // A cell being revealed takes the focus once it is drawn: the render that draws it may be
    // a later one (the scroll it asked for), not the one `reveal` started.
    const wanted = revealing ?? focused;
    const td = wanted?.row ? wrap.querySelector(`td[data-row="${wanted.row}"][data-col="${wanted.col}"]`) : null;
    if (td) {
      td.focus();
      revealing = null;
    }
  }

  let pending = false;
  wrap.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      renderBody(false);
    });
  });

  const toggles = h(
    "details",
    {},
    h("summary", {}, "Columns"),
    h(
      "div",
      { class: "row" },
      columns.map((c, i) =>
        h(
          "label",
          {},
          h("input", {
            type: "checkbox",
            checked: true,
            onchange: (event) => {
              if (event.target.checked) hidden.delete(i);
              else hidden.add(i);
              renderHead();
              renderBody();
            },
          }),
          ` ${c}`,
        ),
      ),
    ),
  );

  const summaries = h(
    "details",
    { open: true },
    h("summary", {}, `Column summaries (over ${rows.length} rows${preview.truncated ? " shown" : ""})`),
    h(
      "table",
      { class: "list" },
      h(
        "thead",
        {},
        h("tr", {}, ["Column", "Numbers", "Missing", "Min", "Min > 0", "Max", "Sum", "Multiples of 5", "Of 10"].map((t) => h("th", { scope: "col" }, t))),
      ),
      h(
        "tbody",
        {},
        (preview.summaries || []).map((s) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, s.column),
            h("td", {}, String(s.numbers)),
            h("td", {}, String(s.missing)),
            h("td", {}, s.min ?? "—"),
            h("td", {}, s.minAboveZero ?? "—"),
            h("td", {}, s.max ?? "—"),
            h("td", {}, s.sum ?? "—"),
            h("td", {}, s.wholeNumbers ? `${s.multiplesOf5} of ${s.wholeNumbers}` : "—"),
            h("td", {}, s.wholeNumbers ? `${s.multiplesOf10} of ${s.wholeNumbers}` : "—"),
          ),
        ),
      ),
    ),
  );
  /** Scrolls to a flagged cell (showing its column if hidden) and focuses it. */
  wrap.reveal = (rowNumber, column) => {
    const index = rows.findIndex((r) => r.row === rowNumber);
    if (index < 0) return;
    if (hidden.delete(column)) {
      toggles.querySelectorAll("input")[column].checked = true;
      renderHead();
    }
    revealing = { row: rowNumber, col: column };
    wrap.scrollTop = Math.max(0, index * ROW_HEIGHT - wrap.clientHeight / 2);
    renderBody();
  };
  renderHead();
  requestAnimationFrame(renderBody);
  renderBody();
  return h("div", {}, toggles, wrap, summaries);
}

// ---------------------------------------------------------------- uploading (researchers)

const BLOCK = 4 * 1024 * 1024;
const PARALLEL = 4;

/** The blob URL of `path` in the container the link names, with the link's signature. */
function blobUrl(containerUrl, path) {
  const [base, query] = containerUrl.split("?");
  const encoded = path.split("/").map(encodeURIComponent).join("/");
  return `${base}/${encoded}?${query}`;
}

async function storage(url, init) {
  const response = await fetch(url, init);
  if (!response.ok) {
    const text = await response.text().catch(() => "");
    const code = (text.match(/<Code>([^<]*)<\/Code>/) || [])[1];
    throw new Error(`storage answered ${response.status}${code ? ` ${code}` : ""}`);
  }
  return response;
}

/**
 * Where an interrupted upload got to: the blocks of this file (same request, path, size and
 * modification time) already stored. Block ids only, no data and no credential; kept in
 * localStorage so that dropping the same file again after a failure, a closed tab or a
 * restarted browser sends only what is missing (uncommitted blocks live 7 days in storage).
 */
function journal(requestId, path, file) {
  const key = `airlock.upload.${requestId}.${file.size}.${file.lastModified}.${path}`;
  return {
    done: () => new Set(JSON.parse(localStorage.getItem(key) || "[]")),
    add(i) {
      const done = this.done();
      done.add(i);
      localStorage.setItem(key, JSON.stringify([...done]));
    },
    clear: () => localStorage.removeItem(key),
  };
}

/** Uploads one file in blocks, several at once, reporting progress; resumes from its journal. */
async function uploadFile(containerUrl, requestId, path, file, progress) {
  const url = blobUrl(containerUrl, path);
  const headers = { "x-ms-version": "2021-08-06" };
  if (file.size <= BLOCK) {
    await storage(url, { method: "PUT", headers: { ...headers, "x-ms-blob-type": "BlockBlob" }, body: file });
    progress(file.size, 0);
    return;
  }
  const count = Math.ceil(file.size / BLOCK);
  const ids = Array.from({ length: count }, (_, i) => btoa(`block-${String(i).padStart(8, "0")}`));
  const log = journal(requestId, path, file);
  const stored = log.done();
  const todo = ids.map((_, i) => i).filter((i) => !stored.has(i));
  let done = (count - todo.length) * BLOCK;
  progress(Math.min(done, file.size), count - todo.length);
  let next = 0;
  let failed = false; // after a failure no new block starts (those under way finish)
  const worker = async () => {
    while (!failed && next < todo.length) {
      const i = todo[next++];
      const piece = file.slice(i * BLOCK, Math.min(file.size, (i + 1) * BLOCK));
      try {
        await storage(`${url}&comp=block&blockid=${encodeURIComponent(ids[i])}`, { method: "PUT", headers, body: piece });
      } catch (e) {
        failed = true;
        throw e;
      }
      log.add(i);
      done += piece.size;
      progress(Math.min(done, file.size), count - todo.length);
    }
  };
  // A failure is reported once the blocks under way have finished (and are in the journal),
  // so that trying again at once sends only what is missing.
  const settled = await Promise.allSettled(Array.from({ length: Math.min(PARALLEL, todo.length) }, worker));
  const refused = settled.find((x) => x.status === "rejected");
  if (refused) throw refused.reason;
  const list = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join("")}</BlockList>`;
  await storage(`${url}&comp=blocklist`, { method: "PUT", headers: { ...headers, "content-type": "application/xml" }, body: list });
  log.clear();
}

function uploadPanel(ws, r) {
  const uploaded = new Map(); // path -> { description, controls } inputs
  const listing = h("ul", { class: "plain", "aria-label": "Uploaded files" });
  const input = h("input", { type: "file", id: "pick-files", multiple: true });
  const folder = h("input", { type: "file", id: "pick-folder", webkitdirectory: true, multiple: true });
  const purpose = h("textarea", { id: "purpose", maxlength: 4000 });
  const checked = h("div", { "aria-live": "polite" });
  const drop = h("div", { class: "drop", tabindex: 0, "aria-label": "Drop files or a folder here" }, "Drop files or a folder here, or choose them: ");
  const send = async (files) => {
    if (!files.length) return;
    let link;
    try {
      link = await api(ws, "GET", requestPath(ws, r.id, "/link"));
    } catch (e) {
      drop.after(failure(e));
      return;
    }
    for (const { path, file } of files) {
      const bar = h("progress", { max: String(file.size || 1), value: "0", "aria-label": `Uploading ${path}` });
      const item = h("li", {}, `${path} (${bytes(file.size)}) `, bar);
      listing.append(item);
      try {
        let resumed = 0;
        await uploadFile(link.containerUrl, r.id, path, file, (n, skipped) => {
          bar.value = n;
          resumed = skipped;
        });
        bar.value = file.size || 1;
        item.append(resumed ? ` ✓ uploaded (resumed: ${resumed} block(s) were already there)` : " ✓ uploaded");
        const n = uploaded.size;
        const description = h("input", { type: "text", id: `describe-${n}`, size: 40, maxlength: 4000 });
        const controls = h("input", { type: "text", id: `controls-${n}`, size: 40, maxlength: 4000 });
        const supporting = h("input", { type: "checkbox", id: `supporting-${n}` });
        item.append(
          h(
            "div",
            { class: "row" },
            h("span", {}, h("label", { for: `describe-${n}` }, "What it is "), description),
            r.type === "export" ? h("span", {}, h("label", { for: `controls-${n}` }, "Disclosure controls "), controls) : null,
            h("span", {}, supporting, h("label", { for: `supporting-${n}` }, " supporting file (reviewed, never released)")),
          ),
        );
        uploaded.set(path, { description, controls, supporting });
        say(`${path} uploaded`);
      } catch (e) {
        item.append(` ✗ ${e.message}`);
        say(`${path}: ${e.message}`);
      }
    }
  };
  const fromInput = (list) =>
    Array.from(list).map((file) => ({ path: file.webkitRelativePath || file.name, file }));
  input.addEventListener("change", () => send(fromInput(input.files)));
  folder.addEventListener("change", () => send(fromInput(folder.files)));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const files = [];
    const walk = async (entry, prefix) => {
      if (entry.isFile) {
        const file = await new Promise((ok, bad) => entry.file(ok, bad));
        files.push({ path: prefix + file.name, file });
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        let batch;
        do {
          batch = await new Promise((ok, bad) => reader.readEntries(ok, bad));
          for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
        } while (batch.length);
      }
    };
    for (const item of event.dataTransfer.items) {
      const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
      if (entry) await walk(entry, "");
    }
    send(files);
  });
  drop.append(
    h("label", { for: "pick-files" }, "files "),
    input,
    " ",
    h("label", { for: "pick-folder" }, "a folder "),
    folder,
  );
  return h(
    "section",
    { class: "panel", "aria-labelledby": "upload" },
    h("h2", { id: "upload" }, "Add files"),
    h(
      "p",
      { class: "muted" },
      "Files go straight to the request's storage through a link the airlock issues. A folder keeps its paths. After changes are requested, upload the changed files again.",
    ),
    drop,
    listing,
    h(
      "p",
      {},
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: async () => {
            checked.replaceChildren(h("p", { class: "muted" }, "Checking the files…"));
            try {
              const report = await api(ws, "POST", requestPath(ws, r.id, "/preflight"));
              checked.replaceChildren(preflightReport(report));
            } catch (e) {
              checked.replaceChildren(failure(e));
            }
          },
        },
        "Check the files before submitting",
      ),
    ),
    checked,
    h("p", {}, h("label", { for: "purpose" }, "Purpose (what the request is for, shown to the reviewers)"), h("br"), purpose),
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          const files = [];
          for (const [name, { description, controls, supporting }] of uploaded) {
            const entry = { name };
            if (description.value.trim()) entry.description = description.value.trim();
            if (controls.value.trim()) entry.disclosureControls = controls.value.trim();
            if (supporting.checked) entry.supporting = true;
            if (entry.description || entry.disclosureControls || entry.supporting) files.push(entry);
          }
          const body = {};
          if (purpose.value.trim()) body.purpose = purpose.value.trim();
          if (files.length) body.files = files;
          await act(ws, r, "submit", Object.keys(body).length ? body : undefined);
        },
      },
      "Submit for review",
    ),
  );
}

/** What a pre-flight check found, each finding with what to do about it. */
function preflightReport(report) {
  const flagged = report.files.filter((f) => f.findings.length);
  return h(
    "section",
    { class: "panel", "aria-labelledby": "preflight" },
    h(
      "h3",
      { id: "preflight" },
      report.wouldBlock
        ? "A submit now would be blocked"
        : flagged.length
          ? "Findings to look at before submitting"
          : `No findings in ${report.files.length} file(s)`,
    ),
    (report.problems || []).map((p) => h("p", { class: "error" }, p)),
    flagged.map((f) =>
      h(
        "div",
        {},
        h("strong", {}, f.name),
        h(
          "ul",
          {},
          f.findings.map((x) =>
            h(
              "li",
              {},
              h("span", { class: `badge ${x.mode === "block" ? "bad" : "warn"}` }, x.mode),
              ` ${x.message}${x.location ? ` (${x.location})` : ""}`,
              x.remediation ? h("div", {}, h("em", {}, "What to do: "), x.remediation) : null,
            ),
          ),
        ),
      ),
    ),
    h("p", { class: "muted" }, `Not checked before submit: ${report.notChecked.join("; ")}.`),
  );
}

// ---------------------------------------------------------------- downloading (verified)

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function downloadPanel(ws, r) {
  const list = h("ul", { class: "plain", "aria-label": "Downloads" });
  const released = r.files.filter((f) => f.decision !== "rejected" && !f.supporting);
  return h(
    "section",
    { class: "panel", "aria-labelledby": "download" },
    h("h2", { id: "download" }, "Download"),
    h("p", { class: "muted" }, "Each file is checked against the sha256 on the record before it is offered to save."),
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          list.replaceChildren();
          let link;
          try {
            link = await api(ws, "GET", requestPath(ws, r.id, "/link"));
          } catch (e) {
            list.append(h("li", {}, failure(e)));
            return;
          }
          for (const f of released) {
            const item = h("li", {}, `${f.name}: downloading…`);
            list.append(item);
            try {
              const response = await storage(blobUrl(link.containerUrl, f.name), { headers: { "x-ms-version": "2021-08-06" } });
              const buffer = await response.arrayBuffer();
              const got = await sha256Hex(buffer);
              if (got !== f.sha256) {
                item.replaceChildren(h("span", { class: "error" }, `${f.name}: sha256 ${got} is not the record's ${f.sha256}; not saved`));
                continue;
              }
              const url = URL.createObjectURL(new Blob([buffer], { type: "application/octet-stream" }));
              item.replaceChildren(
                h("span", { class: "badge ok" }, "✓ verified"),
                " ",
                h("a", { href: url, download: f.name.split("/").pop(), "data-sha256": got }, `Save ${f.name}`),
                h("span", { class: "muted" }, ` sha256 ${got}`),
              );
            } catch (e) {
              item.replaceChildren(h("span", { class: "error" }, `${f.name}: ${e.message}`));
            }
          }
          say("Downloads checked");
        },
      },
      `Download ${released.length} file(s)`,
    ),
    list,
  );
}

start();
