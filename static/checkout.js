/* Copy buttons, live status, telling the shop (iframe): shows what /status says. */
(function () {
  "use strict";
  var root = document.getElementById("checkout");
  if (!root) { return; }
  var data = root.dataset, W = window, D = document;
  var labels = JSON.parse(data.labels || "{}"), txLabels = JSON.parse(data.txLabels || "{}");
  var marks = JSON.parse(data.number || "{}");
  var waitingMs = parseInt(data.pollWaiting, 10) || 3000;
  var seenMs = parseInt(data.pollSeen, 10) || 10000;
  var PAYING = { waiting: 1, partial: 1 };
  var state = { status: data.status, reason: data.reason || null, phase: data.phase,
                final: data.final === "true", moving: false };
  /* tag: the last full answer's ETag, sent back so that an unchanged model is a bodiless 304;
     quiet: answers in a row that changed nothing. */
  var timer = null, busy = false, failures = 0, tag = null, quiet = 0;

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  /* A final page keeps asking, slowly, while its model says `watch` (money may still arrive
     after an invoice's time ran out, or late money is confirming) or a refund is on its way
     (a person approves it, which may take a while): for at most six hours from opening, so
     that a tab left open for days does not poll forever. */
  var lateBox = field("late"), refundBox = field("refund"), opened = Date.now();
  var watching = !!(lateBox && lateBox.dataset.watch === "true" ||
                    refundBox && refundBox.dataset.moving === "true");
  function idle() { return state.gone || state.final && !(watching && Date.now() - opened < 216e5); }
  function setText(name, value) {
    var el = field(name);
    if (el && value != null && el.textContent !== String(value)) { el.textContent = value; }
  }
  function show(name, visible) { var el = field(name); if (el) { el.hidden = !visible; } }
  /* Text where there is some, hidden (with its row) where there is none. */
  function put(name, text, row) { show(row || name, text); if (text) { setText(name, text); } }

  /* A decimal string in the page language's marks, every digit kept (as i18n.number). */
  function num(v) {
    var m = /^(-?)(\d+)(\.\d+)?$/.exec(v = v == null ? "" : String(v));
    if (!m) { return v; }
    var w = m[2].length < marks.min ? m[2] : m[2].replace(/\B(?=(\d{3})+$)/g, marks.group);
    return m[1] + w + (m[3] ? marks.decimal + m[3].slice(1) : "");
  }
  function make(tag, text) { var el = D.createElement(tag); el.textContent = text; return el; }
  /* Draw a list anew only when what it shows changed: a selection in it survives a poll. */
  function redraw(el, items, draw) {
    var key = JSON.stringify(items);
    if (el.dataset.rendered === key) { return; }
    el.textContent = "";
    items.forEach(draw);
    el.dataset.rendered = key;
  }
  function setAmount(name, v) { var el = field(name); if (el) { el.dataset.plain = v; } setText(name, num(v)); }

  /* ---- copy buttons: real buttons, shown only where they can work */
  function copyBySelection(text) {
    var area = D.createElement("textarea"), ok = false;
    area.value = text; area.setAttribute("readonly", ""); area.className = "sr-only";
    D.body.appendChild(area);
    area.select();
    try { ok = D.execCommand && D.execCommand("copy"); } catch (e) { /* refused */ }
    D.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  function copyText(text) {
    if (!navigator.clipboard || !W.isSecureContext) { return copyBySelection(text); }
    /* A frame without allow="clipboard-write" refuses the API; a selection still copies. */
    return navigator.clipboard.writeText(text).catch(function () { return copyBySelection(text); });
  }
  Array.prototype.forEach.call(root.querySelectorAll("button[data-copy]"), function (button) {
    var original = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = field(button.dataset.copy);
      if (!source) { return; }
      /* What a wallet accepts (0.001), not the page's form (0,001). */
      copyText(source.dataset.plain || source.textContent.trim()).then(function () {
        button.textContent = data.copied;
        setText("copy-feedback", data.copied + ": " + original);
        W.setTimeout(function () { button.textContent = original; setText("copy-feedback", ""); }, 2500);
      }, function () { /* the value stays visible and selectable */ });
    });
  });

  /* ---- telling the shop (iframe mode): one exact origin, never "*" */
  var origins = (data.origins || "").split(" ").filter(Boolean);
  function parentOrigins() {
    var seen = [];
    try { if (location.ancestorOrigins && location.ancestorOrigins.length) { seen.push(location.ancestorOrigins[0]); } } catch (e) { /* unsupported */ }
    try { if (D.referrer) { seen.push(new URL(D.referrer).origin); } } catch (e) { /* none */ }
    var known = seen.filter(function (o) { return origins.indexOf(o) !== -1; });
    /* A non-matching targetOrigin drops the message: trying each allowed one is safe. */
    return known.length ? [known[0]] : origins;
  }
  function tellShop(type) {
    if (data.iframe !== "true" || W.parent === W) { return; }
    var message = type ? { type: type, id: data.id } : { type: "checkout:status", id: data.id,
      status: state.status, final: state.final, foreign_id: data.foreignId };
    parentOrigins().forEach(function (origin) {
      try { W.parent.postMessage(message, origin); } catch (e) { /* malformed origin */ }
    });
  }
  /* Escape in the frame closes the shop's modal (embed.js): keys never leave a frame. */
  D.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { tellShop("checkout:close"); }
  });

  /* ---- live status: labels have {placeholders} the model fills, as on the server */
  function fill(template, model) {
    var values = { paid: num(model.amount_paid), amount: num(model.amount), due: num(model.amount_due), over: num(model.amount_over),
      rest: num(model.rest_below_minimum), extra: num(model.minimum_extra),
      extra_fiat: num(model.fiat && model.fiat.extra), fiat: model.fiat ? model.fiat.currency : "",
      ticker: data.ticker || model.currency,
      shop: data.shop || "", minimum: num(model.minimum) || "?", shortfall: num(model.shortfall),
      late: num(model.late ? model.late.amount : model.amount_paid),
      /* isolated (FSI…PDI), as present.isolate: an address reads left to right anywhere */
      email: model.invoice && model.invoice.refund_email ? "\u2068" + model.invoice.refund_email + "\u2069" : "?" };
    return String(template || "").replace(/\{(\w+)\}/g, function (all, name) {
      return name in values ? values[name] : all;
    });
  }
  function about(amount, currency) {
    return data.about.replace("{amount}", num(amount)).replace("{currency}", currency);
  }
  function renderTransactions(model) {
    var list = field("transactions"), box = field("transactions-box");
    if (!list || !box) { return; }
    var items = model.transactions.map(function (tx) {
      var text = num(tx.amount) + " " + data.ticker + " · " +
        (txLabels[tx.status + ":" + tx.refusal] || txLabels[tx.status] || tx.status);
      if (tx.status === "not_confirmed") { text += " · " + data.confirmations + ": " + tx.confirmations; }
      return { text: text, href: tx.explorer_url };
    });
    redraw(list, items, function (item) {
      var li = make("li", item.text);
      if (item.href) {
        var a = make("a", data.explorerText);
        a.href = item.href; a.target = "_blank"; a.rel = "noopener noreferrer";
        li.appendChild(D.createTextNode(" · "));
        li.appendChild(a);
      }
      list.appendChild(li);
    });
    box.hidden = !items.length;
  }
  function renderConfirmations(model) {
    var counts = model.transactions.filter(function (tx) { return tx.status === "not_confirmed"; })
      .map(function (tx) { return Number(tx.confirmations) || 0; });
    put("confirmations", counts.length && data.confirmations + ": " + Math.min.apply(null, counts) +
      (model.confirmations_required ? " " + data.of + " " + model.confirmations_required : ""));
  }
  function renderPay(model) {
    show("pay-box", model.pay_now);
    if (!model.pay_now) { return; }
    setAmount("amount", model.amount_due || model.amount);
    var rest = model.phase === "partial" || model.phase === "late";
    show("amount-label", !rest);
    show("rest-label", rest);
    put("fiat", model.fiat && model.fiat.due && about(model.fiat.due, model.fiat.currency));
    put("minimum-note", model.rest_below_minimum && fill(labels[model.fiat && model.fiat.extra ?
      "note:minimum-fiat" : "note:minimum"], model));
    var qr = field("qr"), wallet = field("wallet-link");
    var src = data.qrUrl + (model.amount_due ? (data.qrUrl.indexOf("?") < 0 ? "?" : "&") + "due=" + encodeURIComponent(model.amount_due) : "");
    if (qr && qr.getAttribute("src") !== src) { qr.setAttribute("src", src); }
    if (wallet && model.payment_uri) { wallet.setAttribute("href", model.payment_uri); }
  }
  function renderOutcome(model) {
    var r = model.receipt;
    show("outcome", r);
    if (!r) { return; }
    setAmount("paid-amount", model.amount_paid);
    put("paid-fiat", r.fiat_amount && about(r.fiat_amount, r.fiat_currency), "paid-fiat-row");
    put("paid-rate", r.rate && r.fiat_currency && "1 " + data.ticker + " = " + num(r.rate) + " " +
      r.fiat_currency, "paid-rate-row");
    var at = field("paid-at");
    if (at && at.getAttribute("datetime") !== r.paid_at) {
      at.setAttribute("datetime", r.paid_at);
      setText("paid-at", when(r.paid_at));
    }
  }
  /* "For support": the model's [key, value] lines under the page language's labels, drawn
     as the server draws them (_support.html): "Label: value" lines, each value isolated. */
  function renderSupport(model) {
    var box = field("support"), pre = field("support-text");
    if (!box || !pre || !("support" in model)) { return; } /* a model stored before it */
    show("support", model.support);
    if (!model.support) { return; }
    var names = JSON.parse(box.dataset.labels || "{}");
    redraw(pre, model.support, function (line, i) {
      var value = make("bdi", line[1]);
      value.dir = "ltr";
      pre.appendChild(D.createTextNode((i ? "\n" : "") + (names[line[0]] || line[0]) + ": "));
      pre.appendChild(value);
    });
  }
  function when(iso) {
    try { return new Date(iso).toLocaleString(data.lang, { dateStyle: "long", timeStyle: "long", timeZone: "UTC" }); } catch (e) { return iso; }
  }
  /* ---- the countdown: the server's seconds_left, ticking locally between polls */
  var deadline = null, expiredPolled = false;
  function tick() {
    var el = field("countdown");
    if (!el || deadline === null) { return; }
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    setText("countdown-time", Math.floor(left / 60) + ":" + ("0" + left % 60).slice(-2));
    el.classList.toggle("urgent", left <= 180);
    if (!left && !expiredPolled) { expiredPolled = true; pollNow(); } /* once, not every tick */
  }
  function anchor(seconds) {
    deadline = seconds == null ? null : Date.now() + seconds * 1000;
    if (seconds) { expiredPolled = false; }
    show("countdown", deadline !== null);
    tick();
  }
  function render(model) {
    /* A form to fill (an invoice's currency, an email), an invoice's final screen (what
       arrived, what happens to it), money that arrived after the invoice closed (its own
       section) and a refund's part, when its state or what is owed changed
       (refund_view.signature), are the server's to draw. */
    if ((model.form || "") !== (data.form || "") ||
        (model.final && data.kind === "invoice" && data.final !== "true") ||
        lateBox && (model.late ? model.late.state : "") !== lateBox.dataset.state ||
        refundBox && (model.refund ? model.refund.signature : "") !== refundBox.dataset.state) {
      W.location.reload();
      return;
    }
    watching = !!(model.watch || model.refund && model.refund.moving);
    /* The time left from the first screen on: the picker and the email step run on it too. */
    anchor(model.seconds_left);
    var changed = model.status !== state.status || model.reason !== state.reason ||
      model.final !== state.final || model.phase !== state.phase;
    var box = field("status-box");
    if (box) {
      box.dataset.status = model.status;
      box.dataset.phase = model.phase;
      box.className = "status status-" + model.phase +
        (model.late && model.late.decision ? " decision-" + model.late.decision : "") + (model.final ? " final" : "");
    }
    setText("status-text", fill(labels[model.label] || labels[model.phase] || model.status, model)); /* role=status: announced */
    put("shortfall-note", model.shortfall && fill(labels["note:short_accepted"], model));
    if (model.phase === "paid" || model.phase === "overpaid") { setText("heading", data.paidHeading); }
    renderConfirmations(model);
    renderPay(model);
    renderOutcome(model);
    renderTransactions(model);
    renderSupport(model);
    var link = field("return-link");
    if (link && model.return_url) {
      link.setAttribute("href", model.return_url);
      show("return", true);
      show("quiet-back", false);
    }
    state = { status: model.status, reason: model.reason, phase: model.phase, final: model.final,
              gone: state.gone, moving: model.phase === "confirming" ||
                model.transactions.some(function (tx) { return tx.status === "not_confirmed"; }) };
    root.dataset.status = model.status;
    root.dataset.phase = model.phase;
    root.dataset.final = String(model.final);
    if (changed) { tellShop(); }
  }
  /* Fast while the customer should pay, while money is on its way and after a change: the
     next phase shows at the next poll. Slower only while nothing moves and nothing changes. */
  function schedule() {
    if (state.final && !idle()) { W.clearTimeout(timer); timer = W.setTimeout(poll, seenMs); return; }
    W.clearTimeout(timer);
    if (state.final || state.gone) { return; }
    var delay = PAYING[state.phase] || state.moving || !quiet ? waitingMs :
      Math.min(seenMs, waitingMs * Math.pow(2, quiet));
    /* A failing server is asked ever less often, at most once a minute. */
    if (failures) { delay = Math.min(60000, delay * Math.pow(2, failures)); }
    timer = W.setTimeout(poll, delay);
  }
  function poll() {
    if (busy || idle()) { return; }
    busy = true;
    var headers = { Accept: "application/json" };
    if (tag) { headers["If-None-Match"] = tag; }
    fetch(data.statusUrl, { cache: "no-store", credentials: "omit", headers: headers })
      .then(function (response) {
        if (response.status === 404) { state.gone = true; }
        if (response.status === 304) { return null; } /* unchanged: the last model stands */
        if (!response.ok) { throw new Error(response.status); }
        tag = response.headers.get("ETag");
        return response.json();
      })
      .then(function (model) {
        failures = 0;
        quiet = model ? 0 : quiet + 1;
        if (model) { render(model); }
      })
      .catch(function () { failures = Math.min(failures + 1, 10); /* keep the last known state */ })
      .then(function () { busy = false; schedule(); });
  }
  function pollNow() {
    if (D.visibilityState === "visible") { W.clearTimeout(timer); poll(); }
  }
  D.addEventListener("visibilitychange", pollNow);
  W.addEventListener("focus", pollNow);
  var countdown = field("countdown-time");
  if (countdown && !field("countdown").hidden) {
    var parts = countdown.textContent.split(":");
    anchor(parseInt(parts[0], 10) * 60 + parseInt(parts[1], 10));
    W.setInterval(tick, 1000);
  }
  tellShop();
  schedule();
})();
