/* The customer page's only script: copy buttons, live status, and telling the shop (iframe).
   The server decides everything; this file only shows what /status says. No framework. */
(function () {
  "use strict";
  var root = document.getElementById("checkout");
  if (!root) { return; }
  var data = root.dataset;
  var labels = JSON.parse(data.labels || "{}");
  var txLabels = JSON.parse(data.txLabels || "{}");
  var waitingMs = parseInt(data.pollWaiting, 10) || 3000;
  var seenMs = parseInt(data.pollSeen, 10) || 10000;
  var state = { status: data.status, reason: data.reason || null, final: data.final === "true", seen: false };
  var timer = null;
  var busy = false;

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function setText(name, value) {
    var el = field(name);
    if (el && value !== null && value !== undefined && el.textContent !== String(value)) {
      el.textContent = value;
    }
  }

  /* ---- copy buttons: real buttons, shown only where they can work */
  function copyBySelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "sr-only";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand && document.execCommand("copy"); } catch (e) { /* refused */ }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  function copyText(text) {
    if (!navigator.clipboard || !window.isSecureContext) { return copyBySelection(text); }
    /* A shop's iframe without allow="clipboard-write" refuses the Clipboard API; copying
       the selection still works there, while the click's user activation lasts. */
    return navigator.clipboard.writeText(text).catch(function () { return copyBySelection(text); });
  }
  Array.prototype.forEach.call(root.querySelectorAll("button[data-copy]"), function (button) {
    var original = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = field(button.dataset.copy);
      if (!source) { return; }
      copyText(source.textContent.trim()).then(function () {
        button.textContent = data.copied;
        setText("copy-feedback", data.copied + ": " + original);
        window.setTimeout(function () { button.textContent = original; setText("copy-feedback", ""); }, 2500);
      }, function () { /* the value stays visible and selectable */ });
    });
  });

  /* ---- telling the shop (iframe mode): one exact origin, never "*" */
  var origins = (data.origins || "").split(" ").filter(Boolean);
  function parentOrigins() {
    var candidates = [];
    try {
      if (location.ancestorOrigins && location.ancestorOrigins.length) {
        candidates.push(location.ancestorOrigins[0]);
      }
    } catch (e) { /* not supported */ }
    try { if (document.referrer) { candidates.push(new URL(document.referrer).origin); } } catch (e) { /* no referrer */ }
    var known = candidates.filter(function (o) { return origins.indexOf(o) !== -1; });
    /* A message to a non-matching targetOrigin is dropped by the browser, so trying each
       allowed origin in turn is safe when the parent's origin cannot be read. */
    return known.length ? [known[0]] : origins;
  }
  function tellShop() {
    if (data.iframe !== "true" || window.parent === window) { return; }
    var message = { type: "checkout:status", id: data.id, status: state.status,
                    final: state.final, foreign_id: data.foreignId };
    parentOrigins().forEach(function (origin) {
      try { window.parent.postMessage(message, origin); } catch (e) { /* malformed origin */ }
    });
  }

  /* ---- live status */
  function labelFor(model) {
    return labels[model.status + ":" + model.reason] || labels[model.status] || model.status;
  }
  function renderTransactions(model) {
    var list = field("transactions");
    var box = field("transactions-box");
    if (!list || !box) { return; }
    var items = model.transactions.map(function (tx) {
      return tx.amount + " " + (data.ticker || model.currency) + " · " + (txLabels[tx.status] || tx.status) +
        " · " + data.confirmations + ": " + tx.confirmations;
    });
    var current = Array.prototype.map.call(list.children, function (li) { return li.textContent.trim(); });
    if (current.join("\n") !== items.join("\n")) {
      list.textContent = "";
      items.forEach(function (text) {
        var li = document.createElement("li");
        li.textContent = text;
        list.appendChild(li);
      });
    }
    box.hidden = items.length === 0;
  }
  function render(model) {
    var box = field("status-box");
    var changed = model.status !== state.status || model.reason !== state.reason || model.final !== state.final;
    if (box) {
      box.dataset.status = model.status;
      box.className = "status status-" + model.status + (model.final ? " final" : "");
    }
    if (changed || field("status-text").textContent.trim() !== labelFor(model)) {
      setText("status-text", labelFor(model)); /* role=status: announced politely */
    }
    setText("amount-paid", model.amount_paid);
    setText("amount-due", model.amount_due);
    var progress = field("progress");
    if (progress && model.amount && model.transactions.length) { progress.hidden = false; }
    renderTransactions(model);
    var pay = field("pay-box");
    if (pay) { pay.hidden = model.final && model.status === "confirmed"; }
    var back = field("return");
    var link = field("return-link");
    if (back && link && model.return_url) {
      link.setAttribute("href", model.return_url);
      back.hidden = false;
    }
    state.seen = model.transactions.length > 0;
    state.status = model.status;
    state.reason = model.reason;
    state.final = model.final;
    root.dataset.status = model.status;
    root.dataset.final = model.final ? "true" : "false";
    if (changed) { tellShop(); }
  }
  var failures = 0;
  var MAX_BACKOFF_MS = 60000;
  function schedule() {
    window.clearTimeout(timer);
    if (state.final || state.gone) { return; }
    var delay = state.seen || state.status !== "waiting" ? seenMs : waitingMs;
    /* A failing server is asked less and less often, never more than once a minute. */
    if (failures) { delay = Math.min(MAX_BACKOFF_MS, delay * Math.pow(2, failures)); }
    timer = window.setTimeout(poll, delay);
  }
  function poll() {
    if (busy || state.final || state.gone) { return; }
    busy = true;
    fetch(data.statusUrl, { cache: "no-store", credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 404) { state.gone = true; }
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (model) { failures = 0; render(model); })
      .catch(function () { failures = Math.min(failures + 1, 10); /* keep the last known state */ })
      .then(function () { busy = false; schedule(); });
  }
  function pollNow() {
    if (document.visibilityState === "visible") { window.clearTimeout(timer); poll(); }
  }
  document.addEventListener("visibilitychange", pollNow);
  window.addEventListener("focus", pollNow);
  tellShop();
  schedule();
})();
