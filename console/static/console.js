// cloak console: the one script of every page (no inline script; the
// Content-Security-Policy forbids it). It reads and acts through the API
// only — fetch and EventSource with the session cookie, the session's
// CSRF token in X-CSRF-Token on every state-changing request — and builds
// the DOM with textContent only, never by parsing HTML strings.
"use strict";
(function () {
  const body = document.body;
  const page = body.dataset.page;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const can = (k) => body.dataset["can" + k.charAt(0).toUpperCase() + k.slice(1)] === "1";
  const $ = (id) => document.getElementById(id);

  function status(msg) {
    const s = $("status");
    if (s) s.textContent = msg || "";
  }

  async function api(method, path, data) {
    const opt = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET" && method !== "HEAD") opt.headers["X-CSRF-Token"] = csrf;
    if (data !== undefined) {
      opt.headers["Content-Type"] = "application/json";
      opt.body = JSON.stringify(data);
    }
    const res = await fetch(path, opt);
    if (res.status === 401 && page !== "signin") {
      location.assign("/signin?next=" + encodeURIComponent(location.pathname));
      throw new Error("signed out");
    }
    let json = null;
    try { json = await res.json(); } catch (e) { json = null; }
    if (!res.ok) {
      const err = new Error((json && json.error) || ("HTTP " + res.status));
      err.status = res.status;
      throw err;
    }
    return json;
  }

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function row(cells) {
    const tr = el("tr");
    for (const c of cells) {
      const td = el("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c == null ? "" : String(c);
      tr.appendChild(td);
    }
    return tr;
  }
  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }
  function when(t) {
    if (!t || t.startsWith("0001-")) return "";
    const d = new Date(t);
    return isNaN(d) ? "" : d.toLocaleString();
  }
  function dur(ns) {
    const s = Math.round((ns || 0) / 1e9);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function kv(tbody, obj) {
    const rows = [];
    for (const k of Object.keys(obj || {}).sort()) {
      const tr = el("tr");
      tr.appendChild(el("th", k, { scope: "row" }));
      tr.appendChild(el("td", obj[k]));
      rows.push(tr);
    }
    fill(tbody, rows);
  }

  const so = $("signout");
  if (so) so.addEventListener("click", async () => {
    try { await api("DELETE", "/api/session"); } catch (e) { /* gone already */ }
    location.assign("/signin");
  });

  // ---- sign in ------------------------------------------------------
  function signin() {
    const f = $("signin-form");
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      status("Signing in…");
      try {
        await api("POST", "/api/session", { name: $("signin-name").value, password: $("signin-password").value });
        $("signin-password").value = "";
        const next = new URLSearchParams(location.search).get("next");
        location.assign(next && /^\/[a-z]/.test(next) && !next.startsWith("//") ? next : "/");
      } catch (e) {
        status(e.message);
      }
    });
  }

  // ---- agent desktop --------------------------------------------------
  // Expected keys per field (the panel's "12/16"); Amex changes the card
  // to 15 and the CVV to 4 once the brand is known.
  function expected(field, brand) {
    if (field === "card") return brand === "amex" ? 15 : 16;
    if (field === "expiry") return 4;
    if (field === "cvv") return brand === "amex" ? 4 : 3;
    return 0;
  }
  function desk() {
    let current = null, es = null, answered = null, payment = null, brand = "";
    let held = null; // the current or just-ended call, for "Hold payment…"
    const fields = {};

    // risk shows the call-arrival screening's mark (call.FraudRisk: score,
    // minimum, criteria by type or rule name — it carries no value) in the
    // role="alert" banner; a clean call has none.
    function risk(r) {
      const b = $("risk");
      if (!r || (!r.unscreened && !r.over && !(r.matches || []).length)) { b.hidden = true; return; }
      const text = r.unscreened ? "Fraud screening did not answer (" + r.unscreened + "): call not screened" :
        "Fraud risk: score " + r.score + " (minimum " + r.minimum + ")";
      const names = (r.matches || []).map((m) => m.criterion).join(", ");
      if (!b.hidden && $("risk-text").textContent === text && $("risk-criteria").textContent === names) return;
      $("risk-text").textContent = text;
      $("risk-criteria").textContent = names || "none";
      b.dataset.over = r.over ? "1" : "0";
      b.hidden = false;
    }

    function renderFields() {
      const rows = [];
      for (const name of (payment && payment.fields) || []) {
        const f = fields[name] || { count: 0, state: "empty" };
        const want = expected(name, brand);
        const dots = "●".repeat(f.count) + "○".repeat(Math.max(0, want - f.count));
        // Entries left of the field (payments.attempts): counts only.
        const allowed = f.allowed || payment.allowed || 0;
        const left = Math.max(0, allowed - (f.attempts || 0));
        const tr = row([name, dots, f.count + "/" + want, f.state + (f.failure ? " (" + f.failure + ")" : ""),
          allowed ? (left === 1 ? "1 attempt left" : left + " attempts left") : ""]);
        tr.id = "pay-field-" + name;
        tr.dataset.state = f.state;
        tr.dataset.count = String(f.count);
        tr.dataset.attemptsLeft = String(left);
        if (payment.focus === name) tr.className = "focus";
        rows.push(tr);
      }
      fill($("pay-fields"), rows);
      $("pay-brand").textContent = brand ? "Card brand: " + brand : "";
    }
    function onPayment(type, p) {
      if (!p) return;
      switch (type) {
        case "payment_started":
          payment = { id: p.id, fields: p.fields || ["card", "expiry", "cvv"], focus: "", allowed: p.attempts_allowed || 0 };
          brand = "";
          for (const k in fields) delete fields[k];
          $("pay-form").hidden = true;
          $("pay-panel").hidden = false;
          $("pay-result").hidden = true;
          $("pay-returned").hidden = true;
          $("pay-submit").disabled = true;
          break;
        case "payment_field":
          if (!payment) payment = { id: p.id, fields: ["card", "expiry", "cvv"] };
          fields[p.field] = { count: p.count, state: p.state, failure: p.failure, attempts: p.attempts || 0, allowed: p.attempts_allowed || 0 };
          if (p.brand) brand = p.brand;
          payment.focus = p.focus;
          $("pay-submit").disabled = !p.ready;
          break;
        case "payment_result": {
          const r = p.result || {};
          const out = $("pay-result");
          out.hidden = false;
          out.dataset.result = r.result || r.outcome || "";
          out.textContent = "Payment " + (r.result || r.outcome || "failed") +
            (r.last4 ? " — card ending " + r.last4 : "") + (r.reference ? " — reference " + r.reference : "");
          break;
        }
        case "payment_ended":
          $("pay-panel").hidden = true;
          $("pay-form").hidden = false;
          $("pay-returned").hidden = false;
          $("pay-returned").textContent = (p.reason === "attempts" ? "Payment ended: a field has no attempts left" :
            "Payment " + (p.reason || "ended")) + ": caller returned to you.";
          payment = null;
          return;
      }
      renderFields();
    }
    function listen(id) {
      if (es) es.close();
      es = new EventSource("/api/calls/" + encodeURIComponent(id) + "/events");
      for (const t of ["payment_started", "payment_field", "payment_result", "payment_ended"]) {
        es.addEventListener(t, (m) => { try { const ev = JSON.parse(m.data); onPayment(ev.type, ev.payment); } catch (e) { /* not JSON */ } });
      }
      for (const t of ["secure_started", "secure_ended", "state"]) {
        es.addEventListener(t, () => refresh());
      }
      es.addEventListener("fraud_risk", (m) => { try { risk(JSON.parse(m.data).risk); } catch (e) { /* not JSON */ } });
      es.addEventListener("ended", () => { es.close(); es = null; ended(); });
    }
    function ended() {
      current = null;
      $("call").hidden = true;
      $("call-ended").hidden = false;
      $("no-call").hidden = false;
    }
    function show(c) {
      $("no-call").hidden = true;
      $("call-ended").hidden = true;
      $("call").hidden = false;
      $("call-caller").textContent = c.caller || "(withheld)";
      $("call-queue").textContent = c.target || "";
      $("call-mode").textContent = c.mode + (c.agent_reserved ? " (you are reserved)" : "");
      answered = c.answered && !c.answered.startsWith("0001-") ? new Date(c.answered) : null;
      recState(c.recording || "off", c.recording_paused || []);
      const data = Object.assign({}, c.data);
      if (data.fraud_risk !== undefined) {
        try { risk(JSON.parse(data.fraud_risk)); } catch (e) { /* not JSON */ }
        delete data.fraud_risk; // shown in the banner
      }
      kv($("call-data").tBodies[0], data);
    }
    async function refresh() {
      let calls;
      try { calls = await api("GET", "/api/calls"); } catch (e) { status(e.message); return; }
      const mine = (calls || []).find((c) => !body.dataset.agent || c.agent === body.dataset.agent);
      if (!mine) { if (current) ended(); return; }
      if (!current || current !== mine.id) {
        current = mine.id;
        $("risk").hidden = true;
        if ($("hold")) {
          held = mine.id;
          $("hold").hidden = false;
          $("hold-result").hidden = true;
        }
        listen(mine.id);
      }
      show(mine);
    }
    setInterval(() => {
      if (answered) $("call-time").textContent = dur((Date.now() - answered.getTime()) * 1e6);
    }, 1000);
    setInterval(refresh, 2000);
    refresh();

    // recState shows the recording's state as the call info has it
    // (so a reloaded desk is right): on, paused (and by what other than
    // this desk's own pause, the API's), off. Resume lifts only the
    // API's pause, so it shows only while that one is active.
    function recState(state, why) {
      const own = why.includes("api");
      const others = why.filter((r) => r !== "api");
      $("call-recording").textContent = state + (state === "paused" && others.length ? " (" + others.join(", ") + ")" : "");
      $("call-recording").dataset.state = state;
      if (!$("rec-pause")) return;
      $("rec-pause").hidden = state === "off" || own;
      $("rec-resume").hidden = !own;
    }
    async function recording(action) {
      if (!current) return;
      try {
        await api("POST", "/api/calls/" + encodeURIComponent(current) + "/recording/" + action);
        const paused = action === "pause";
        recState(paused ? "paused" : "on", paused ? ["api"] : []);
        (paused ? $("rec-resume") : $("rec-pause")).focus();
      } catch (e) { status(e.message); }
    }
    if ($("rec-pause")) {
      $("rec-pause").addEventListener("click", () => recording("pause"));
      $("rec-resume").addEventListener("click", () => recording("resume"));
    }
    // A manual hold (fraud-manual) of the current or just-ended call's
    // payment, with the comment the API requires.
    if ($("hold-form")) {
      $("hold-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const out = $("hold-result");
        if (!held) return;
        $("hold-submit").disabled = true;
        try {
          const h = await api("POST", "/api/fraud/holds", { interaction: held, comment: $("hold-comment").value });
          out.textContent = "Payment held: hold " + h.id + ".";
          out.dataset.hold = String(h.id);
          $("hold-comment").value = "";
          $("hold-details").open = false;
        } catch (e) {
          out.textContent = "Not held: " + e.message;
          delete out.dataset.hold;
        }
        out.hidden = false;
        $("hold-submit").disabled = false;
      });
    }
    if ($("pay-form")) {
      $("pay-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        if (!current) return;
        status("Opening the payment…");
        try {
          const r = await api("POST", "/api/calls/" + encodeURIComponent(current) + "/payments", {
            fields: ["card", "expiry", "cvv"], amount: $("pay-amount").value, currency: $("pay-currency").value,
            reference: $("pay-reference").value,
          });
          if (!payment) onPayment("payment_started", { id: r.id, fields: (r.fields || []).map((f) => f.field || f.name || f) });
          payment.id = r.id;
          status("Payment open: the caller may key the card.");
          $("pay-submit").focus();
        } catch (e) { status(e.message); }
      });
      $("pay-submit").addEventListener("click", async () => {
        if (!current || !payment) return;
        $("pay-submit").disabled = true;
        status("Submitting…");
        try {
          const r = await api("POST", "/api/calls/" + encodeURIComponent(current) + "/payments/" + encodeURIComponent(payment.id) + "/submit");
          onPayment("payment_result", { result: r.result });
          status("");
        } catch (e) { status(e.message); $("pay-submit").disabled = false; }
      });
      $("pay-cancel").addEventListener("click", async () => {
        if (!current || !payment) return;
        try { await api("DELETE", "/api/calls/" + encodeURIComponent(current) + "/payments/" + encodeURIComponent(payment.id)); } catch (e) { status(e.message); }
      });
    }
  }

  // ---- live ---------------------------------------------------------
  function live() {
    async function monitor(id, mode) {
      try {
        await api("POST", "/api/calls/" + encodeURIComponent(id) + "/monitor", { mode: mode, target: body.dataset.user });
        status(mode + " started on " + id);
      } catch (e) { status(mode + ": " + e.message); }
    }
    // On a cluster (data-cluster) the calls are every node's, each row
    // naming its node; a node that did not answer is named in the status.
    const cluster = body.dataset.cluster === "1";
    let missingShown = false;
    async function listCalls() {
      if (!cluster) return api("GET", "/api/calls");
      const r = await api("GET", "/api/cluster/calls");
      const missing = (r.nodes || []).filter((n) => n.error).map((n) => n.node + ": " + n.error);
      if (missing.length || missingShown) status(missing.length ? "Calls missing from " + missing.join("; ") : "");
      missingShown = missing.length > 0;
      return r.calls || [];
    }
    async function refresh() {
      try {
        const [calls, agents] = await Promise.all([listCalls(), api("GET", "/api/agents")]);
        $("calls-count").textContent = "(" + calls.length + ")";
        fill($("live-calls").tBodies[0], calls.map((c) => {
          const since = c.answered && !c.answered.startsWith("0001-") ? Date.now() - new Date(c.answered).getTime() : 0;
          const cells = [c.caller, c.target, c.mode + (c.agent_reserved ? ", agent reserved" : "") + (c.agent ? "" : ", waiting"),
            c.agent || "", since > 0 ? dur(since * 1e6) : "", (c.monitors || []).map((m) => m.supervisor + " " + m.mode).join(", ")];
          if (cluster) cells.unshift(c.node || "");
          if (can("monitor")) {
            const span = el("span");
            for (const mode of ["listen", "coach", "barge"]) {
              const b = el("button", mode, { type: "button" });
              b.addEventListener("click", () => monitor(c.id, mode));
              span.appendChild(b);
            }
            cells.push(span);
          }
          const tr = row(cells);
          tr.dataset.mode = c.mode;
          tr.dataset.call = c.id;
          if (cluster) tr.dataset.node = c.node || "";
          return tr;
        }));
        fill($("live-agents").tBodies[0], agents.map((a) => {
          const tr = row([a.name, a.state, (a.queues || []).join(", "), when(a.idle_since)]);
          tr.dataset.state = a.state;
          return tr;
        }));
      } catch (e) { status(e.message); }
    }
    setInterval(refresh, 2000);
    refresh();
  }

  // ---- archive ------------------------------------------------------
  function archive() {
    const f = $("search-form");
    let offset = 0;
    const limit = 50;
    // Keyset paging: afters[k] is the cursor page k starts after (the
    // API's "next" of page k-1), so a deep page costs what the first
    // does; offset only numbers the rows shown.
    let afters = [""], next = "";
    async function search() {
      const q = new URLSearchParams();
      for (const n of ["caller", "queue", "agent", "route", "data"]) {
        const v = f.elements[n].value.trim();
        if (v) q.set(n, v);
      }
      for (const n of ["from", "to"]) if (f.elements[n].value) q.set(n, f.elements[n].value);
      if (f.elements.recorded.checked) q.set("recorded", "true");
      // The export links carry the same filters (the API audits each).
      for (const [id, fmt] of [["export-csv", "csv"], ["export-xlsx", "xlsx"]]) {
        const a = $(id);
        if (!a) continue;
        const eq = new URLSearchParams(q);
        eq.set("format", fmt);
        a.href = "/api/archive/export?" + eq.toString();
      }
      q.set("limit", String(limit));
      const after = afters[afters.length - 1];
      if (after) q.set("after", after);
      status("Searching…");
      try {
        const r = await api("GET", "/api/archive/interactions?" + q.toString());
        status("");
        $("results-total").textContent = r.total + " interactions";
        fill($("results").tBodies[0], r.interactions.map((ix) => {
          const a = el("a", when(ix.offered), { href: "/archive/" + encodeURIComponent(ix.id) });
          const cells = [a, ix.caller, ix.route, ix.queue || "", ix.agent || "", dur(ix.wait_ns), dur(ix.talk_ns), ix.ended_by || ""];
          if (can("delete")) {
            const box = el("input", null, { type: "checkbox", "aria-label": "select " + ix.id });
            box.className = "pick";
            box.dataset.id = ix.id;
            box.addEventListener("change", picked);
            cells.unshift(box);
          }
          return row(cells);
        }));
        picked();
        $("page-info").textContent = r.total ? (offset + 1) + "–" + Math.min(offset + limit, r.total) + " of " + r.total : "";
        $("page-prev").disabled = offset === 0;
        next = r.next || "";
        $("page-next").disabled = !next || offset + limit >= r.total;
      } catch (e) { status(e.message); }
    }
    // Several recordings deleted at once: tick rows (or all), press
    // twice. Each is one DELETE of the API, audited there.
    function picked() {
      const n = document.querySelectorAll("input.pick:checked").length;
      const b = $("bulk-delete");
      if (b) b.disabled = n === 0;
      if ($("bulk-confirm")) $("bulk-confirm").hidden = true;
      if ($("bulk-n")) $("bulk-n").textContent = String(n);
    }
    if ($("select-all")) {
      $("select-all").addEventListener("change", () => {
        for (const b of document.querySelectorAll("input.pick")) b.checked = $("select-all").checked;
        picked();
      });
      $("bulk-delete").addEventListener("click", () => { $("bulk-confirm").hidden = false; $("bulk-confirm").focus(); });
      $("bulk-confirm").addEventListener("click", async () => {
        $("bulk-confirm").hidden = true;
        let ok = 0, failed = 0;
        for (const b of document.querySelectorAll("input.pick:checked")) {
          try { await api("DELETE", "/api/archive/interactions/" + encodeURIComponent(b.dataset.id) + "/recording"); ok++; }
          catch (e) { failed++; }
        }
        // After the search refreshes the rows: it clears the status line.
        await search();
        status(ok + " recordings deleted" + (failed ? ", " + failed + " not (none kept, or refused)" : "") + ".");
      });
    }
    f.addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; afters = [""]; search(); });
    $("page-prev").addEventListener("click", () => {
      if (afters.length > 1) afters.pop();
      offset = Math.max(0, offset - limit);
      search();
    });
    $("page-next").addEventListener("click", () => {
      if (!next) return;
      afters.push(next);
      offset += limit;
      search();
    });
    search();
  }

  function interaction() {
    const id = body.dataset.id;
    const base = "/api/archive/interactions/" + encodeURIComponent(id);
    async function load() {
      let ix;
      try { ix = await api("GET", base); } catch (e) { status(e.message); return; }
      const facts = $("ix-facts");
      facts.replaceChildren();
      for (const [k, v] of [["Id", ix.id], ["Caller", ix.caller], ["Called", ix.called], ["Route", ix.route],
        ["Queue", ix.queue], ["Agent", ix.agent], ["Offered", when(ix.offered)], ["Ended", when(ix.ended)],
        ["Wait", dur(ix.wait_ns)], ["Talk", dur(ix.talk_ns)], ["Ended by", ix.ended_by]]) {
        facts.appendChild(el("dt", k));
        facts.appendChild(el("dd", v || ""));
      }
      // Participant data: masked after the call by the archive's policy.
      const data = {};
      for (const d of ix.data || []) data[d.key] = d.value + (d.policy && d.policy !== "keep" ? " (" + d.policy + ")" : "");
      kv($("ix-data").tBodies[0], data);
      fill($("ix-segments").tBodies[0], (ix.secure_segments || []).map((s) => row([s.flow, s.kind, when(s.start), when(s.end),
        Object.keys(s.outputs || {}).sort().map((k) => k + "=" + s.outputs[k]).join(", ")])));
      fill($("ix-trace").tBodies[0], (ix.trace || []).map((s) => row([when(s.at), s.flow, s.step, s.action, s.branch || ""])));
      fill($("ix-audit").tBodies[0], (ix.audit || []).map((a) => row([when(a.at), a.actor, a.action, a.detail || ""])));
      const rec = ix.recording;
      const live = rec && rec.file && !(rec.deleted_at && !rec.deleted_at.startsWith("0001-"));
      const info = $("ix-recording");
      info.replaceChildren(el("p", live ? "Recording of " + dur(rec.duration_ns) + (rec.status ? " (" + rec.status + ")" : "") :
        rec && rec.deleted_by ? "Recording deleted by " + rec.deleted_by + "." : "No recording."));
      const markers = [];
      let ms = [];
      try { ms = rec && rec.markers ? (typeof rec.markers === "string" ? JSON.parse(rec.markers) : rec.markers) : []; } catch (e) { ms = []; }
      // The secure pauses: a list (keyboard: each seeks the player) and
      // bars on a timeline under the player (CSSOM positions: the CSP
      // allows no style attribute).
      const total = rec && rec.duration_ns ? rec.duration_ns / 1e6 : 0;
      const bars = [];
      for (const m of ms || []) {
        const li = el("li");
        const b = el("button", "Paused (" + (m.reason || "secure") + ") " + dur(m.start_ms * 1e6) + "–" + dur(m.end_ms * 1e6), { type: "button" });
        b.addEventListener("click", () => { const a = $("ix-audio"); if (a) { a.currentTime = m.start_ms / 1000; a.focus(); } });
        li.appendChild(b);
        li.className = "marker";
        markers.push(li);
        if (total > 0) {
          const bar = el("span", "", { title: "paused: " + (m.reason || "secure") });
          bar.className = "pause";
          bar.style.left = (100 * m.start_ms / total) + "%";
          bar.style.width = Math.max(0.5, 100 * (m.end_ms - m.start_ms) / total) + "%";
          bars.push(bar);
        }
      }
      $("ix-markers").replaceChildren(...markers);
      $("ix-timeline").replaceChildren(...bars);
      $("ix-timeline").hidden = !live || bars.length === 0;
      const audio = $("ix-audio");
      if (audio && live) { audio.src = base + "/recording/play"; audio.hidden = false; }
      const dl = $("ix-download");
      if (dl && live) { dl.href = base + "/recording"; dl.hidden = false; }
      const del = $("ix-delete");
      if (del) del.hidden = !live;
    }
    // Deleting takes two presses: the first asks, the second deletes.
    const del = $("ix-delete"), sure = $("ix-delete-confirm");
    if (del) {
      del.addEventListener("click", () => { sure.hidden = false; sure.focus(); });
      sure.addEventListener("click", async () => {
        sure.hidden = true;
        try {
          await api("DELETE", base + "/recording");
          const audio = $("ix-audio");
          if (audio) { audio.pause(); audio.removeAttribute("src"); audio.hidden = true; }
          status("Recording deleted.");
          load();
        } catch (e) { status(e.message); }
      });
    }
    load();
  }

  // ---- audit --------------------------------------------------------
  function audit() {
    const f = $("audit-form");
    async function show() {
      const q = new URLSearchParams({ verify: "true" });
      if (f.elements.id.value.trim()) q.set("id", f.elements.id.value.trim());
      status("Loading and verifying…");
      try {
        const r = await api("GET", "/api/archive/audit?" + q.toString());
        status("");
        const actor = f.elements.actor.value.trim(), action = f.elements.action.value.trim();
        const rows = (r.entries || []).filter((e) => (!actor || (e.actor || "").includes(actor)) && (!action || e.action === action));
        const v = $("audit-verified");
        v.dataset.verified = r.verified ? "1" : "0";
        v.textContent = r.verified ? "Signatures and chain verified: the log is intact." :
          "VERIFICATION FAILED: rows " + (r.failed || []).join(", ") + " do not verify, or the chain is broken.";
        v.className = r.verified ? "ok" : "bad";
        fill($("audit-log").tBodies[0], rows.slice(-1000).reverse().map((e) => row([e.seq || e.id, when(e.at), e.actor, e.action,
          e.interaction || "", e.address || "", e.detail || "", e.valid === false ? "INVALID" : "ok"])));
      } catch (e) { status(e.message); }
    }
    f.addEventListener("submit", (ev) => { ev.preventDefault(); show(); });
    show();
  }

  // ---- fraud holds --------------------------------------------------
  function holds() {
    const form = $("hold-form");
    function open(id, what) {
      form.dataset.id = String(id);
      form.dataset.what = what;
      $("hold-form-id").textContent = what + " hold " + id;
      form.hidden = false;
      $("hold-note").focus();
    }
    async function load() {
      try {
        const r = await api("GET", "/api/fraud/holds");
        fill($("holds").tBodies[0], r.holds.map((h) => {
          const span = el("span");
          const whats = h.status === "open" && can("holds") ? ["release", "reject", "comment"] : ["comment"];
          for (const what of whats) {
            const b = el("button", what, { type: "button" });
            b.addEventListener("click", () => open(h.id, what));
            span.appendChild(b);
          }
          const tr = row([h.id, h.interaction, h.status, h.score + "/" + h.minimum, when(h.created), span]);
          tr.dataset.hold = String(h.id);
          tr.dataset.status = h.status;
          return tr;
        }));
      } catch (e) { status(e.message); }
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const id = form.dataset.id, what = form.dataset.what;
      const path = "/api/fraud/holds/" + encodeURIComponent(id) + "/" + (what === "comment" ? "comments" : what);
      try {
        await api("POST", path, { comment: $("hold-note").value });
        $("hold-note").value = "";
        form.hidden = true;
        status("Hold " + id + ": " + what + " done.");
        load();
      } catch (e) { status(e.message); }
    });
    load();
  }

  // ---- fraud data: static entries and rules (fraud.data) ------------
  function fraud() {
    const pageSize = 200;
    let offset = 0;
    async function entries() {
      try {
        const type = $("d-filter").value;
        const q = "?limit=" + pageSize + "&offset=" + offset + (type ? "&type=" + encodeURIComponent(type) : "");
        const r = await api("GET", "/api/fraud/data" + q);
        $("d-total").textContent = r.total ? (offset + 1) + "–" + (offset + r.entries.length) + " of " + r.total : "none";
        $("d-prev").disabled = offset === 0;
        $("d-next").disabled = offset + r.entries.length >= r.total;
        fill($("entries").tBodies[0], r.entries.map((e) => {
          const b = el("button", "remove", { type: "button", "aria-label": "remove " + e.type + " " + e.value });
          b.addEventListener("click", async () => {
            try {
              await api("DELETE", "/api/fraud/data?type=" + encodeURIComponent(e.type) + "&value=" + encodeURIComponent(e.value));
              status("Removed " + e.type + " " + e.value + ".");
              entries();
            } catch (err) { status(err.message); }
          });
          const tr = row([e.type, e.value, e.score == null ? "default" : e.score, e.comment || "", e.added_by || "", when(e.added), b]);
          tr.dataset.entry = e.type + ":" + e.value;
          return tr;
        }));
      } catch (err) { status(err.message); }
    }
    async function rules() {
      try {
        const r = await api("GET", "/api/fraud/rules");
        $("rules-version").textContent = "(version " + r.version + ")";
        fill($("rules").tBodies[0], r.rules.map((x) => row([x.name, x.when, x.score, x.comment || "", x.disabled ? "disabled" : "on"])));
        const h = await api("GET", "/api/fraud/rules/history?limit=200");
        fill($("rules-history").tBodies[0], h.history.map((c) => row([c.version, when(c.at), c.actor, c.action, c.rule.name, c.rule.score, c.rule.when])));
      } catch (err) { status(err.message); }
    }
    function problems(list) {
      fill($("d-problems"), (list || []).map((p) => el("li", p)));
    }
    $("data-add").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { type: $("d-type").value, value: $("d-value").value, comment: $("d-comment").value };
      if ($("d-score").value !== "") body.score = Number($("d-score").value);
      try {
        const e = await api("POST", "/api/fraud/data", body);
        $("d-value").value = "";
        $("d-comment").value = "";
        problems([]);
        status("Added " + e.type + " " + e.value + ".");
        entries();
      } catch (err) { status(err.message); }
    });
    $("data-import").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = $("d-file").files[0];
      if (!file) return;
      try {
        const res = await fetch("/api/fraud/data/import", { method: "POST", credentials: "same-origin",
          headers: { "Accept": "application/json", "Content-Type": "text/csv", "X-CSRF-Token": csrf }, body: await file.text() });
        let json = null;
        try { json = await res.json(); } catch (e) { json = null; }
        if (!res.ok) {
          status((json && json.error) || ("HTTP " + res.status));
          problems(json && json.problems);
          return;
        }
        problems([]);
        status("Imported " + json.imported + " entries.");
        entries();
      } catch (err) { status(err.message); }
    });
    $("d-filter").addEventListener("change", () => { offset = 0; entries(); });
    $("d-prev").addEventListener("click", () => { offset = Math.max(0, offset - pageSize); entries(); });
    $("d-next").addEventListener("click", () => { offset += pageSize; entries(); });
    entries();
    rules();
  }

  // ---- anonymise ----------------------------------------------------
  function anonymise() {
    const f = $("forget-form");
    let req = null;
    function request() {
      const r = { number: f.elements.number.value.trim(), delete_recordings: f.elements.delete_recordings.checked };
      const kv = f.elements.data.value.trim();
      if (kv) {
        const i = kv.indexOf("=");
        if (i <= 0) throw new Error("participant data: want key=value");
        r.data = {};
        r.data[kv.slice(0, i)] = kv.slice(i + 1);
      }
      if (!r.number && !r.data) throw new Error("give a number or key=value");
      return r;
    }
    f.addEventListener("input", () => { req = null; $("f-confirm").hidden = true; $("f-count").textContent = ""; });
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        req = request();
        // Shown before confirming: how many interactions the search
        // finds by the number as caller and by the data (the called
        // number is matched too when anonymising).
        let byCaller = 0, byData = 0;
        if (req.number) byCaller = (await api("GET", "/api/archive/interactions?limit=1&caller=" + encodeURIComponent(req.number))).total;
        if (req.data) {
          const k = Object.keys(req.data)[0];
          byData = (await api("GET", "/api/archive/interactions?limit=1&data=" + encodeURIComponent(k + "=" + req.data[k]))).total;
        }
        const c = $("f-count");
        c.dataset.caller = String(byCaller);
        c.dataset.data = String(byData);
        c.textContent = (req.number ? byCaller + " interactions from this number" : "") + (req.number && req.data ? "; " : "") +
          (req.data ? byData + " with this participant data" : "") + ".";
        $("f-confirm").textContent = "Anonymise now" + (req.delete_recordings ? " and delete their recordings" : "");
        $("f-confirm").hidden = false;
        $("f-confirm").focus();
      } catch (e) { status(e.message); }
    });
    $("f-confirm").addEventListener("click", async () => {
      if (!req) return;
      $("f-confirm").hidden = true;
      try {
        const r = await api("POST", "/api/archive/anonymise", req);
        $("f-done").dataset.changed = String(r.changed);
        $("f-done").textContent = r.changed + " interactions anonymised.";
        f.reset();
        req = null;
      } catch (e) { status(e.message); }
    });
  }

  // ---- users and tokens (admin) ---------------------------------------
  function users() {
    async function act(method, path, what) {
      try { await api(method, path); status(what + "."); load(); } catch (e) { status(e.message); }
    }
    // Add a user: the password goes to the API once and is cleared from
    // the form whatever the answer.
    $("user-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const req = { name: f.elements.name.value.trim(), role: f.elements.role.value, agent: f.elements.agent.value.trim(), password: f.elements.password.value };
      f.elements.password.value = "";
      try {
        await api("POST", "/api/users", req);
        status("User " + req.name + " added (" + req.role + ").");
        f.reset();
        load();
      } catch (e) { status("User not added: " + e.message); }
    });
    // Create a token: shown in the page once, never again (the API keeps
    // only its hash).
    if ($("token-form")) {
      $("token-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const f = ev.target;
        try {
          const t = await api("POST", "/api/tokens", { name: f.elements.name.value.trim(), role: f.elements.role.value, expires: f.elements.expires.value.trim() });
          $("t-made-name").textContent = t.name + " (" + t.role + ")";
          $("t-made-token").textContent = t.token;
          $("t-made").hidden = false;
          f.reset();
          status("");
          load();
        } catch (e) { status("Token not created: " + e.message); }
      });
    }
    async function load() {
      try {
        const r = await api("GET", "/api/users");
        fill($("users").tBodies[0], r.users.map((u) => {
          const what = u.disabled ? "enable" : "disable";
          const b = el("button", what, { type: "button", "aria-label": what + " " + u.name });
          b.addEventListener("click", () => act("POST", "/api/users/" + encodeURIComponent(u.name) + "/" + what, u.name + " " + what + "d"));
          const tr = row([u.name, u.role, u.agent || "", u.disabled ? "disabled" : "active", when(u.created), when(u.password_changed), b]);
          tr.dataset.user = u.name;
          tr.dataset.state = u.disabled ? "disabled" : "active";
          return tr;
        }));
        if (!$("tokens")) return;
        const t = await api("GET", "/api/tokens");
        fill($("tokens").tBodies[0], t.tokens.map((k) => {
          const revoked = k.revoked && !k.revoked.startsWith("0001-");
          let cell = "";
          if (!revoked) {
            cell = el("button", "revoke", { type: "button", "aria-label": "revoke token " + k.name });
            cell.addEventListener("click", () => act("POST", "/api/tokens/" + encodeURIComponent(k.id) + "/revoke", "token " + k.name + " revoked"));
          }
          const tr = row([k.id, k.name, k.role, k.created_by, when(k.created), when(k.expires) || "never", revoked ? "revoked " + when(k.revoked) : "live", cell]);
          tr.dataset.token = k.name;
          tr.dataset.state = revoked ? "revoked" : "live";
          return tr;
        }));
      } catch (e) { status(e.message); }
    }
    load();
  }

  const pages = { users: users, anonymise: anonymise, signin: signin, desk: desk, live: live, archive: archive, interaction: interaction, audit: audit, holds: holds, fraud: fraud };
  if (pages[page]) pages[page]();
})();
