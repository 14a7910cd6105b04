// The anomaly explorer: a client of the public GraphQL API and its CSV exports, with no
// build step. The token is kept in sessionStorage (this tab only) and sent in an
// Authorization header, never in a URL; a permalink is the hash route alone.
"use strict";

const TOKEN_KEY = "trustfabric.token";
const SEVERITY_ORDER = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];
const STATUSES = ["OPEN", "ACKNOWLEDGED", "RESOLVED"];
const PAGE = 100; // the API's largest page

const state = { viewer: null, anomalyExtras: "", socket: null, retry: 0, list: null };
const $ = (selector) => document.querySelector(selector);

// --- DOM: elements are built, never parsed from strings, so no value can become markup.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) {
      el.append(child instanceof Node ? child : String(child));
    }
  }
  return el;
}

function show(...children) {
  const main = $("#main");
  main.replaceChildren(...children.flat().filter(Boolean));
  return main;
}

function alertBox(message) {
  const box = $("#alert");
  box.hidden = !message;
  box.textContent = message || "";
}

function when(iso) {
  return iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "—";
}

function short(text, size = 12) {
  return text && text.length > size + 7 ? text.slice(0, size + 7) + "…" : text;
}

// --- the API

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function authHeaders() {
  return { authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
}

async function gql(query, variables = {}, token = null) {
  const headers = { "content-type": "application/json" };
  headers.authorization = "Bearer " + (token || sessionStorage.getItem(TOKEN_KEY) || "");
  const response = await fetch("/graphql", {
    method: "POST", headers, body: JSON.stringify({ query, variables }),
  });
  const body = await response.json().catch(() => null);
  if (!body) throw new ApiError("HTTP_" + response.status, "the service answered " + response.status);
  if (body.errors && body.errors.length) {
    const error = body.errors[0];
    const code = (error.extensions && error.extensions.code) || "ERROR";
    if (code === "UNAUTHENTICATED" && !token) signOut("Your token was refused (revoked or expired): sign in again.");
    throw new ApiError(code, error.message);
  }
  return body.data;
}

// A Relay id of an anomaly from its readable id, as the API builds it: Anomaly:<tenant>:<id>.
function anomalyGlobalId(tenant, readableId) {
  const bytes = new TextEncoder().encode(`Anomaly:${tenant}:${readableId}`);
  return btoa(String.fromCharCode(...bytes));
}

const NODE_FIELDS = `
  id __typename
  ... on TenantNode { tenant }
  ... on Job { jobId jobKind: kind jobStatus: status pipeline startedAt finishedAt }
  ... on Image { digest ref builtAt }
  ... on Commit { sha message author committedAt }
  ... on Repo { url }
  ... on Policy { policyId }
  ... on PolicyVersion { policyId version hash createdAt }
  ... on Anomaly { anomalyId kind severity status summary observedAt }`;

function anomalyFields() {
  return `id anomalyId kind severity status summary observedAt tenant ${state.anomalyExtras}`;
}

// Suppression context is shown when the API has it: the page asks which fields exist
// rather than assuming a version of the API.
async function detectAnomalyExtras() {
  try {
    const data = await gql(`{ __type(name: "Anomaly") { fields { name } } }`);
    const names = new Set((data.__type ? data.__type.fields : []).map((f) => f.name));
    state.anomalyExtras = ["decision", "suppressedBy", "verdict"].filter((n) => names.has(n)).join(" ");
  } catch (error) {
    state.anomalyExtras = ""; // introspection may be switched off: show what is certain
  }
}

// --- signing in and out

function signInView(message) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
  const problem = h("p", { id: "signin-problem", class: "problem", role: "alert" }, message || "");
  const form = h("form", { class: "card signin", onsubmit: async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try {
      const data = await gql("{ viewer { tenant role } }", {}, input.value.trim());
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      await start(data.viewer);
    } catch (error) {
      problem.textContent = error.code === "UNAUTHENTICATED"
        ? "This token was refused: it is unknown, revoked or mistyped."
        : `Could not sign in: ${error.message}`;
      input.focus();
    }
  } },
  h("h2", {}, "Sign in"),
  h("label", { for: "token" }, "API token"),
  input,
  h("p", { id: "token-help", class: "muted" }, "A token (tf_…) from `trustfabric token create`. It is kept for this tab only."),
  h("button", { type: "submit" }, "Sign in"),
  problem);
  show(form);
  input.focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.viewer = null;
  if (state.socket) state.socket.close(1000);
  state.socket = null;
  $("#viewer").textContent = "";
  $("#sign-out").hidden = true;
  $("#live").hidden = true;
  $("#live-state").hidden = true;
  signInView(message);
}

async function start(viewer) {
  state.viewer = viewer;
  $("#viewer").textContent = `${viewer.tenant} · ${viewer.role}`;
  $("#sign-out").hidden = false;
  $("#live").hidden = false;
  await detectAnomalyExtras();
  connectLive();
  route();
}

// --- routes: #/ (list, with filters as query), #/anomaly/<id>[?hop=n], #/node/<id>

function parseHash() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  return { parts: (path || "/").split("/").filter(Boolean).map(decodeURIComponent),
           params: new URLSearchParams(query || "") };
}

async function route() {
  alertBox("");
  if (!state.viewer) return;
  const { parts, params } = parseHash();
  try {
    if (parts[0] === "anomaly" && parts[1]) await anomalyView(parts[1], params);
    else if (parts[0] === "node" && parts[1]) await nodeView(parts[1]);
    else await listView(params);
  } catch (error) {
    if (error.code !== "UNAUTHENTICATED") {
      show(h("h2", {}, error.code === "NOT_FOUND" ? "Not found" : "Something went wrong"),
           h("p", { class: "problem" }, error.code === "NOT_FOUND"
             ? "Nothing with this id is within your token's reach."
             : `${error.code}: ${error.message}`),
           h("p", {}, h("a", { href: "#/" }, "Back to the anomalies")));
    }
  }
}

// --- the list of anomalies

function sortAnomalies(rows, order) {
  const bySeverity = (a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity);
  const byNewest = (a, b) => (b.observedAt || "").localeCompare(a.observedAt || "");
  return [...rows].sort((a, b) => (order === "newest" ? byNewest(a, b) || bySeverity(a, b)
                                                     : bySeverity(a, b) || byNewest(a, b)));
}

function select(name, label, options, value) {
  return h("label", {}, label, h("select", { name },
    h("option", { value: "" }, "any"),
    options.map((o) => h("option", { value: o, selected: o === value }, o.toLowerCase()))));
}

async function listView(params) {
  const filters = {
    severity: params.get("severity") || "", status: params.has("status") ? params.get("status") : "OPEN",
    kind: params.get("kind") || "", tenant: params.get("tenant") || "", order: params.get("order") || "severity",
  };
  const variables = { first: PAGE, severity: filters.severity || null, status: filters.status || null,
                      tenant: filters.tenant || null };
  const rows = [];
  let after = null;
  // up to five pages: an on-call list, not an archive (the CSV export has everything)
  for (let n = 0; n < 5; n++) {
    const data = await gql(`query List($first: Int!, $after: String, $severity: Severity, $status: AnomalyStatus, $tenant: String) {
      anomalies(first: $first, after: $after, severity: $severity, status: $status, tenant: $tenant) {
        edges { node { ${anomalyFields()} } } pageInfo { hasNextPage endCursor } } }`, { ...variables, after });
    rows.push(...data.anomalies.edges.map((e) => e.node));
    if (!data.anomalies.pageInfo.hasNextPage) break;
    after = data.anomalies.pageInfo.endCursor;
  }
  const kinds = [...new Set(rows.map((r) => r.kind))].sort();
  const shown = sortAnomalies(rows.filter((r) => !filters.kind || r.kind === filters.kind), filters.order);
  const operator = state.viewer.role === "operator";

  const search = h("input", { id: "search", name: "id", type: "search", placeholder: "e.g. acme-anomaly-0-0-0", autocomplete: "off" });
  const searchForm = h("form", { class: "search", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const id = search.value.trim();
    if (id) location.hash = `#/anomaly/${encodeURIComponent(anomalyGlobalId(filters.tenant || state.viewer.tenant, id))}`;
  } }, h("label", { for: "search" }, "Find by anomaly id"), search, h("button", { type: "submit" }, "Open"));

  const filterForm = h("form", { class: "filters", onchange: (event) => {
    const data = new FormData(event.currentTarget);
    const next = new URLSearchParams();
    for (const [key, value] of data) if (value || key === "status") next.set(key, value);
    location.hash = "#/?" + next.toString();
  }, onsubmit: (event) => event.preventDefault() },
  select("severity", "Severity ", SEVERITY_ORDER, filters.severity),
  select("status", "Status ", STATUSES, filters.status),
  select("kind", "Kind ", kinds, filters.kind),
  h("label", {}, "Order ", h("select", { name: "order" },
    h("option", { value: "severity", selected: filters.order === "severity" }, "most severe first"),
    h("option", { value: "newest", selected: filters.order === "newest" }, "newest first"))),
  operator ? h("label", {}, "Tenant ", h("input", { name: "tenant", value: filters.tenant, size: 12 })) : null);

  const exportQuery = new URLSearchParams();
  for (const key of ["severity", "status", "tenant"]) if (filters[key]) exportQuery.set(key, filters[key]);
  const table = h("table", { class: "anomalies" },
    h("caption", {}, `${shown.length} anomal${shown.length === 1 ? "y" : "ies"}` + (rows.length >= 5 * PAGE ? " (the first 500: narrow the filters)" : "")),
    h("thead", {}, h("tr", {}, ["Anomaly", "Severity", "Kind", "Status", "Observed", "Summary"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", { onkeydown: moveInList }, shown.map((a) => h("tr", {},
      h("th", { scope: "row" }, h("a", { href: `#/anomaly/${encodeURIComponent(a.id)}`, class: "row-link" }, a.anomalyId)),
      h("td", {}, h("span", { class: `sev sev-${a.severity.toLowerCase()}` }, a.severity)),
      h("td", {}, a.kind), h("td", {}, a.status + (a.suppressedBy ? " · suppressed" : "")),
      h("td", {}, when(a.observedAt)), h("td", {}, a.summary || "")))));
  show(h("h2", {}, "Anomalies"), searchForm, filterForm,
       h("p", {}, h("button", { type: "button", onclick: () => download(`/export/anomalies.csv?${exportQuery}`, "anomalies.csv") }, "Export CSV"),
         " ", h("button", { type: "button", onclick: () => route() }, "Refresh")),
       shown.length ? table : h("p", {}, "No anomalies match."));
}

// ↑/↓ (and j/k) move between the rows' links
function moveInList(event) {
  const step = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 }[event.key];
  if (!step) return;
  const links = [...document.querySelectorAll(".row-link")];
  const at = links.indexOf(document.activeElement);
  const next = links[Math.max(0, Math.min(links.length - 1, at + step))];
  if (next) { event.preventDefault(); next.focus(); }
}

// --- an anomaly and its lineage

async function anomalyView(id, params) {
  const data = await gql(`query Trace($id: ID!) { lineage(anomalyId: $id) {
      complete anomaly { ${anomalyFields()} job { jobId pipeline } }
      policyVersion { id policyId version hash }
      hops { position relation joins direction node { ${NODE_FIELDS} } }
      root { id } } }`, { id });
  const lineage = data.lineage;
  const a = lineage.anomaly;
  const selected = Number(params.get("hop") || 0);
  const rootAt = lineage.hops.findIndex((hop) => hop.node.id === lineage.root.id);
  const pick = (n) => { location.hash = `#/anomaly/${encodeURIComponent(id)}?hop=${n}`; };
  const path = h("ol", { class: "path", "aria-label": "Lineage, from the anomaly to its root", onkeydown: (event) => {
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    const buttons = [...path.querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    let next = null;
    if (step) next = buttons[Math.max(0, Math.min(buttons.length - 1, at + step))];
    if (event.key === "Home") next = buttons[0];
    if (event.key === "End") next = buttons[buttons.length - 1];
    if (next) { event.preventDefault(); next.focus(); }
  } }, lineage.hops.map((hop) => h("li", {},
    hop.position ? h("span", { class: "relation" }, edgeLabel(hop, lineage.hops)) : null,
    h("button", { type: "button", class: "hop" + (hop.position === selected ? " selected" : ""),
                  "aria-current": hop.position === selected ? "step" : null,
                  "data-kind": hop.node.__typename, onclick: () => pick(hop.position) },
      h("span", { class: "kind" }, kindLabel(hop.node) + (hop.position === rootAt ? " · root" : "")),
      h("span", { class: "label" }, nodeLabel(hop.node))))));
  const policy = lineage.policyVersion;
  const hop = lineage.hops[selected] || lineage.hops[0];
  show(
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Anomalies"), " › ", a.anomalyId),
    h("h2", {}, a.anomalyId, " ", h("span", { class: `sev sev-${a.severity.toLowerCase()}` }, a.severity)),
    h("p", {}, a.summary || "", " — ", a.kind, ", ", a.status.toLowerCase(), ", observed ", when(a.observedAt)),
    await suppressionLine(a),
    h("p", { class: "policy" }, "Policy in force: ", policy
      ? h("strong", { id: "policy-version" }, `${policy.policyId} ${policy.version}`) : "none recorded",
      policy ? h("span", { class: "muted" }, ` (hash ${short(policy.hash)})`) : null),
    h("h3", {}, "Lineage", lineage.complete ? "" : " (incomplete: it stops before a repository)"),
    path,
    h("p", { class: "actions" },
      h("button", { type: "button", id: "to-root", onclick: () => pick(rootAt) }, "Go to the root"), " ",
      h("button", { type: "button", onclick: () => download(`/export/lineage.csv?anomaly=${encodeURIComponent(id)}`, `lineage-${a.anomalyId}.csv`) }, "Export lineage CSV"), " ",
      h("button", { type: "button", onclick: (event) => copyPermalink(event.currentTarget) }, "Copy permalink")),
    h("section", { class: "card", id: "hop", "aria-labelledby": "hop-title" }, h("p", {}, "Loading…")));
  state.rootAt = rootAt;
  await nodePanel($("#hop"), hop.node, hop.position === rootAt);
  const current = path.querySelector(".selected");
  if (current && params.has("hop")) current.focus();
}

// The hops are a tree read in order (the policy version and the image both hang from the
// job): each names its edge to the hop it joins, so the label says which one and which way.
function edgeLabel(hop, hops) {
  const joined = hops[hop.joins];
  const relation = hop.relation.toLowerCase().replace(/_/g, " ");
  if (!joined) return relation;
  const kind = kindLabel(joined.node).toLowerCase();
  return hop.direction === "TO_JOINED" ? `←${relation}— ${kind}` : `${kind} —${relation}→`;
}

function kindLabel(node) {
  return node.__typename === "PolicyVersion" ? "Policy version" : node.__typename;
}

function nodeLabel(node) {
  switch (node.__typename) {
    case "Anomaly": return node.anomalyId;
    case "Job": return node.jobId;
    case "PolicyVersion": return `${node.policyId} ${node.version}`;
    case "Image": return node.ref || short(node.digest);
    case "Commit": return short(node.sha, 5) + (node.message ? ` ${node.message}` : "");
    case "Repo": return node.url;
    case "Policy": return node.policyId;
    default: return node.id;
  }
}

// The paging decision, and the rule that silenced the anomaly with its reason and end.
async function suppressionLine(a) {
  if (!a.decision && !a.suppressedBy && !a.verdict) return null;
  let rule = null;
  if (a.suppressedBy) {
    const data = await gql(`query Rules($tenant: String) { suppressionRules(tenant: $tenant) { id reason endsAt status } }`,
                           { tenant: a.tenant });
    rule = data.suppressionRules.find((r) => r.id === a.suppressedBy);
  }
  return h("p", { class: "suppression" }, "Paging: ", a.decision ? String(a.decision).toLowerCase() : "—",
    a.suppressedBy ? ` · silenced by suppression rule ${a.suppressedBy}` : "",
    rule ? ` (“${rule.reason}”, ${rule.status.toLowerCase()} until ${when(rule.endsAt)})` : "",
    a.verdict ? ` · verdict ${String(a.verdict).toLowerCase()}` : "");
}

// --- one node: its facts, its neighbours, and the context its kind has

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function nodeFacts(node) {
  switch (node.__typename) {
    case "Job": return [["Job", node.jobId], ["Kind", node.jobKind], ["Status", node.jobStatus], ["Pipeline", node.pipeline], ["Started", when(node.startedAt)], ["Finished", when(node.finishedAt)]];
    case "Image": return [["Digest", node.digest], ["Reference", node.ref], ["Built", when(node.builtAt)]];
    case "Commit": return [["Commit", node.sha], ["Message", node.message], ["Author", node.author], ["Committed", when(node.committedAt)]];
    case "Repo": return [["Repository", node.url]];
    case "PolicyVersion": return [["Policy", node.policyId], ["Version", node.version], ["Hash", node.hash], ["Created", when(node.createdAt)]];
    case "Policy": return [["Policy", node.policyId]];
    case "Anomaly": return [["Anomaly", node.anomalyId], ["Kind", node.kind], ["Severity", node.severity], ["Status", node.status], ["Summary", node.summary], ["Observed", when(node.observedAt)]];
    default: return [];
  }
}

async function nodePanel(panel, node, isRoot) {
  const [neighbours, context] = await Promise.all([neighbourList(node), contextFor(node)]);
  panel.replaceChildren(
    h("h3", { id: "hop-title" }, `${kindLabel(node)}${isRoot ? " — the root" : ""}`),
    facts([...nodeFacts(node), ["Tenant", node.tenant]]),
    h("p", {}, h("a", { href: `#/node/${encodeURIComponent(node.id)}` }, "Open this node on its own")),
    ...[context, neighbours].filter(Boolean));
}

async function neighbourList(node) {
  const data = await gql(`query Around($id: ID!) { neighbors(id: $id, depth: 1) {
      nodes { ${NODE_FIELDS} } edges { source type target } } }`, { id: node.id });
  const others = data.neighbors.nodes.filter((n) => n.id !== node.id);
  const relation = (other) => {
    const edge = data.neighbors.edges.find((e) => (e.source === node.id && e.target === other.id) || (e.target === node.id && e.source === other.id));
    return edge ? (edge.source === node.id ? edge.type : `${edge.type} (from)`) : "";
  };
  return h("section", {}, h("h4", {}, `Neighbours (${others.length})`),
    h("ul", { class: "neighbours" }, others.map((n) => h("li", {},
      h("a", { href: n.__typename === "Anomaly" ? `#/anomaly/${encodeURIComponent(n.id)}` : `#/node/${encodeURIComponent(n.id)}` },
        `${n.__typename}: ${nodeLabel(n)}`), h("span", { class: "muted" }, ` ${relation(n).toLowerCase().replace(/_/g, " ")}`)))));
}

async function contextFor(node) {
  if (node.__typename === "Commit") return impactSection(node);
  if (node.__typename === "PolicyVersion") return policySection(node);
  if (node.__typename === "Image") return imagePromotions(node);
  return null;
}

async function impactSection(commit) {
  const data = await gql(`query Impact($sha: String!) { impact(commitSha: $sha) {
      images { id digest ref } jobs { id jobId } tenants truncated
      openAnomalies { id anomalyId severity summary } } }`, { sha: commit.sha });
  const impact = data.impact;
  return h("section", { class: "impact" }, h("h4", {}, "Impact of this commit", impact.truncated ? " (truncated)" : ""),
    h("p", {}, `${impact.images.length} images, ${impact.jobs.length} jobs, tenants: ${impact.tenants.join(", ") || "—"}`),
    h("p", {}, `Open anomalies after it (${impact.openAnomalies.length}):`),
    h("ul", {}, impact.openAnomalies.map((a) => h("li", {},
      h("a", { href: `#/anomaly/${encodeURIComponent(a.id)}` }, a.anomalyId), ` ${a.severity.toLowerCase()} — ${a.summary || ""}`))));
}

async function policySection(version) {
  const data = await gql(`{ environments { name position policyId declared deployed drifted }
      policyDrift { environment { name } risk reasons replayed flips { snapshot before after } } }`);
  const envs = data.environments.filter((e) => e.policyId === version.policyId);
  const drift = new Map(data.policyDrift.map((d) => [d.environment.name, d]));
  const names = (key) => (key ? key.split(":").slice(-1)[0] : "—");
  return h("section", { class: "policy-context" }, h("h4", {}, `Where ${version.policyId} runs`),
    envs.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Environment", "Declared", "Deployed", "Drift"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, envs.sort((x, y) => x.position - y.position).map((e) => {
        const d = drift.get(e.name);
        return h("tr", {}, h("td", {}, e.name), h("td", {}, names(e.declared)), h("td", {}, names(e.deployed)),
          h("td", {}, e.drifted ? `drifted, ${d ? d.risk.toLowerCase() + " risk" : ""}${d && d.reasons.length ? ": " + d.reasons.join("; ") : ""}${d ? ` (${d.flips.length} of ${d.replayed} recent decisions would flip)` : ""}` : "none"));
      })))
      : h("p", { class: "muted" }, "No environment declares this policy."),
    promotionSection());
}

const PROMOTION_FIELDS = `id from to allowed at image
  hints { ruleId hint template }
  insight { cause decidingRule decidingFact
    constraints { ruleId message values expected }
    mitigations { rank action template }
    links { image commit baseImages baselineImage } }`;

// The image's own promotions, newest first; a denied one shows why at once.
async function imagePromotions(image) {
  const data = await gql(`query Promotions($image: String!) { promotions(image: $image, first: 5) {
      ${PROMOTION_FIELDS} } }`, { image: image.digest });
  return h("section", {}, h("h4", {}, `Promotions of this image (${data.promotions.length})`),
    data.promotions.length
      ? h("ul", { class: "promotions" }, data.promotions.map((p) => h("li", {}, insightView(p))))
      : h("p", { class: "muted" }, "Not promoted yet."),
    promotionSection());
}

// A promotion is found by the id it was asked with (e.g. from the pipeline's log).
function promotionSection() {
  const input = h("input", { name: "promotion", size: 16, autocomplete: "off", "aria-label": "Promotion id" });
  const out = h("div", { class: "insight", "aria-live": "polite" });
  return h("section", {}, h("h4", {}, "Why a promotion failed"),
    h("form", { class: "inline", onsubmit: async (event) => {
      event.preventDefault();
      try {
        out.replaceChildren(insightView((await gql(`query Why($id: String!) { promotion(id: $id) {
          ${PROMOTION_FIELDS} } }`, { id: input.value.trim() })).promotion));
      } catch (error) {
        out.replaceChildren(h("p", { class: "problem" }, error.code === "NOT_FOUND" ? "No promotion with this id." : `${error.code}: ${error.message}`));
      }
    } }, h("label", {}, "Promotion id ", input), " ", h("button", { type: "submit" }, "Explain")), out);
}

function insightView(p) {
  const head = h("p", {}, `${p.id}: ${p.from} → ${p.to}, ${p.allowed ? "allowed" : "denied"} ${when(p.at)}`);
  if (!p.insight) return head;
  const i = p.insight;
  const link = (label, id) => (id ? h("a", { href: `#/node/${encodeURIComponent(id)}` }, label) : null);
  return h("div", {}, head,
    h("p", {}, `Cause: ${i.cause.toLowerCase().replace(/_/g, " ")}`, i.decidingRule ? `; rule ${i.decidingRule}` : "", i.decidingFact ? ` on fact ${i.decidingFact}` : ""),
    h("ul", {}, i.constraints.map((c) => h("li", {}, `${c.ruleId}: ${c.message} — was ${JSON.stringify(c.values)}`, c.expected ? `, would pass with ${JSON.stringify(c.expected)}` : ""))),
    h("h5", {}, "Mitigations"),
    h("ol", {}, i.mitigations.map((m) => h("li", {}, m.action, m.template ? h("span", { class: "muted" }, ` (${m.template})`) : null))),
    p.hints && p.hints.length ? h("h5", {}, "Coaching hints") : null,
    p.hints && p.hints.length ? h("ul", {}, p.hints.map((x) => h("li", {}, `${x.ruleId}: ${x.hint} `,
      h("span", { class: "muted" }, `(${x.template})`)))) : null,
    h("p", {}, "Look at: ", link("image", i.links.image), " ", link("commit", i.links.commit), " ", link("last passing image", i.links.baselineImage)));
}

async function nodeView(id) {
  const data = await gql(`query One($id: ID!) { node(id: $id) { ${NODE_FIELDS} } }`, { id });
  const node = data.node;
  show(h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Anomalies"), " › ", `${node.__typename} ${nodeLabel(node)}`),
       h("h2", {}, nodeLabel(node)),
       h("p", { class: "actions" }, h("button", { type: "button", onclick: (event) => copyPermalink(event.currentTarget) }, "Copy permalink")),
       h("section", { class: "card", id: "hop" }, h("p", {}, "Loading…")));
  await nodePanel($("#hop"), node, node.__typename === "Repo");
}

// --- exports and permalinks

// The exports want the token in a header, so the file is fetched and handed to the browser.
async function download(url, filename) {
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    alertBox(`Export refused: ${(body.error && body.error.message) || response.status}`);
    return;
  }
  const href = URL.createObjectURL(await response.blob());
  const link = h("a", { href, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

async function copyPermalink(button) {
  const url = location.href; // the hash route only: the token never is in it
  try { await navigator.clipboard.writeText(url); button.textContent = "Permalink copied"; } catch (error) {
    window.prompt("Permalink to this view:", url);
  }
}

// --- live events: graphql-ws (graphql-transport-ws) straight over a WebSocket

function connectLive() {
  if (state.socket || !sessionStorage.getItem(TOKEN_KEY)) return;
  const url = new URL("/graphql", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, "graphql-transport-ws");
  const badge = $("#live-state");
  state.socket = socket;
  socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init", payload: authHeaders() }));
  socket.onmessage = (message) => {
    const msg = JSON.parse(message.data);
    if (msg.type === "connection_ack") {
      state.retry = 0;
      badge.hidden = false;
      badge.textContent = "● live";
      socket.send(JSON.stringify({ id: "jobs", type: "subscribe",
        payload: { query: "subscription { psiJobEvents { jobId status at } }" } }));
      socket.send(JSON.stringify({ id: "anomalies", type: "subscribe",
        payload: { query: "subscription { anomalyEvents { id anomalyId decision at } }" } }));
    } else if (msg.type === "ping") {
      socket.send(JSON.stringify({ type: "pong" }));
    } else if (msg.type === "next" && msg.payload.data) {
      const list = $("#events");
      const job = msg.payload.data.psiJobEvents;
      const anomaly = msg.payload.data.anomalyEvents;
      if (job) {
        list.prepend(h("li", { class: "event" }, h("strong", {}, job.status), ` PSI job ${short(job.jobId, 10)} · ${when(job.at)}`));
      } else if (anomaly) {
        // a new anomaly: listed here at once, and in the list on its next load
        list.prepend(h("li", { class: "event" }, h("strong", {}, anomaly.decision.toLowerCase()), " anomaly ",
          h("a", { href: `#/anomaly/${encodeURIComponent(anomaly.id)}` }, anomaly.anomalyId), ` · ${when(anomaly.at)}`));
      }
      while (list.children.length > 50) list.lastChild.remove();
    } else if (msg.type === "error" || (msg.type === "next" && msg.payload.errors)) {
      badge.textContent = "live updates refused";
    }
  };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    state.socket = null;
    if (!state.viewer) return;
    badge.textContent = "○ reconnecting…";
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(connectLive, 500 * 2 ** state.retry);
  };
}

// --- keys: / search, Esc back to the list, r the root of the lineage shown

document.addEventListener("keydown", (event) => {
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(event.target.tagName);
  if (event.key === "Escape" && state.viewer && location.hash && !location.hash.startsWith("#/?") && location.hash !== "#/") {
    location.hash = "#/";
  } else if (typing || event.ctrlKey || event.metaKey || event.altKey) {
    return;
  } else if (event.key === "/" && $("#search")) {
    event.preventDefault();
    $("#search").focus();
  } else if (event.key === "r" && $("#to-root")) {
    $("#to-root").click();
  }
});

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  $("#sign-out").addEventListener("click", () => signOut(""));
  if (!sessionStorage.getItem(TOKEN_KEY)) return signInView("");
  try {
    await start((await gql("{ viewer { tenant role } }")).viewer);
  } catch (error) {
    if (error.code !== "UNAUTHENTICATED") signInView(`Could not reach the service: ${error.message}`);
  }
});
