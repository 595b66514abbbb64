/* Embed the checkout on a shop's page in a modal iframe, with one call:

     var handle = Checkout.open(link, {
       onLoaded: function () {},
       onStatus: function (message) {},   // {type, id, status, final, foreign_id}
       onClose: function () {}
     });
     handle.close();

   `link` is a terminal link with "is_iframe": true; the shop's origin must be one of the
   merchant's frame origins. Messages are accepted only from the checkout's own origin and
   only from the frame this call opened. */
(function (global) {
  "use strict";
  var scriptOrigin = (function () {
    var current = document.currentScript;
    return current && current.src ? new URL(current.src).origin : null;
  })();

  /* The modal's own words in the shop visitor's language, unless the shop passes its own. */
  var WORDS = { en: ["Payment", "Close"], de: ["Zahlung", "Schließen"], es: ["Pago", "Cerrar"],
    fr: ["Paiement", "Fermer"], pt: ["Pagamento", "Fechar"], ru: ["Оплата", "Закрыть"],
    tr: ["Ödeme", "Kapat"], zh: ["付款", "关闭"], ja: ["お支払い", "閉じる"], ar: ["الدفع", "إغلاق"] };
  function words() {
    var lang = (document.documentElement.lang || navigator.language || "en").toLowerCase();
    return WORDS[lang.split("-")[0]] || WORDS.en;
  }

  function open(url, options) {
    options = options || {};
    var said = words();
    var target = new URL(url, global.location.href);
    var origin = target.origin;
    if (scriptOrigin && origin !== scriptOrigin) {
      throw new Error("Checkout.open: the link must be on " + scriptOrigin);
    }
    var overlay = document.createElement("div");
    var dialog = document.createElement("div");
    var frame = document.createElement("iframe");
    var closeButton = document.createElement("button");
    var previousFocus = document.activeElement;
    var closed = false;

    overlay.setAttribute("data-checkout", "overlay");
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-label", options.title || said[0]);
    frame.setAttribute("title", options.title || said[0]);
    frame.setAttribute("allow", "clipboard-write");
    frame.src = target.href;
    closeButton.type = "button";
    closeButton.textContent = options.closeLabel || said[1];

    /* Styles through the CSSOM, which a shop's strict style-src still allows. */
    var s = overlay.style;
    s.position = "fixed"; s.inset = "0"; s.zIndex = "2147483000"; s.display = "flex";
    s.alignItems = "center"; s.justifyContent = "center"; s.background = "rgba(0,0,0,.55)";
    var d = dialog.style;
    d.position = "relative"; d.width = "min(30rem, 100vw)"; d.height = "min(46rem, 100vh)";
    d.background = "#fff"; d.borderRadius = "0.75rem"; d.overflow = "hidden";
    var f = frame.style;
    f.border = "0"; f.width = "100%"; f.height = "100%"; f.display = "block";
    var c = closeButton.style;
    c.position = "absolute"; c.top = "0.4rem"; c.insetInlineEnd = "0.4rem"; c.zIndex = "1";
    c.font = "600 0.9rem/1 system-ui, sans-serif"; c.minHeight = "2.25rem"; c.padding = "0 0.8rem";
    c.border = "1px solid #0b5cad"; c.borderRadius = "0.4rem"; c.background = "#fff";
    c.color = "#0b5cad"; c.cursor = "pointer";
    closeButton.addEventListener("focus", function () { c.outline = "3px solid #0b5cad"; c.outlineOffset = "2px"; });
    closeButton.addEventListener("blur", function () { c.outline = ""; });

    function onMessage(event) {
      if (event.origin !== origin || event.source !== frame.contentWindow) { return; }
      var message = event.data;
      if (!message || typeof message !== "object") { return; }
      /* Escape pressed inside the frame: its keys never reach this page, so it says so. */
      if (message.type === "checkout:close") { close(); return; }
      if (message.type !== "checkout:status") { return; }
      if (typeof options.onStatus === "function") { options.onStatus(message); }
    }
    function onKey(event) { if (event.key === "Escape") { close(); } }
    /* aria-modal alone keeps neither Tab nor a screen reader out of the shop's page behind
       the dialog: make the rest of the page inert while the dialog is open. */
    var madeInert = [];
    function holdFocus() {
      Array.prototype.forEach.call(document.body.children, function (el) {
        if (el !== overlay && !el.inert) { el.inert = true; madeInert.push(el); }
      });
    }
    function releaseFocus() {
      madeInert.forEach(function (el) { el.inert = false; });
      madeInert = [];
    }
    function close() {
      if (closed) { return; }
      closed = true;
      global.removeEventListener("message", onMessage);
      document.removeEventListener("keydown", onKey);
      releaseFocus();
      if (overlay.parentNode) { overlay.parentNode.removeChild(overlay); }
      if (previousFocus && previousFocus.focus) { previousFocus.focus(); }
      if (typeof options.onClose === "function") { options.onClose(); }
    }

    frame.addEventListener("load", function () {
      if (typeof options.onLoaded === "function") { options.onLoaded(); }
    });
    closeButton.addEventListener("click", close);
    overlay.addEventListener("click", function (event) { if (event.target === overlay) { close(); } });
    global.addEventListener("message", onMessage);
    document.addEventListener("keydown", onKey);

    dialog.appendChild(closeButton);
    dialog.appendChild(frame);
    overlay.appendChild(dialog);
    document.body.appendChild(overlay);
    holdFocus();
    closeButton.focus();
    return { close: close, frame: frame };
  }

  global.Checkout = { open: open };
})(window);
