// studyd's live page: follow the projection checkpoint over server-sent events and,
// when the views advance, fetch this page's content again and swap it in, keeping the
// reader's place (focus, open data tables, scroll).
(function () {
  "use strict";
  var status = document.getElementById("live-status");
  function say(text) { if (status) { status.textContent = text; } }
  if (!window.EventSource || !window.fetch) { say("static: this browser cannot follow updates"); return; }
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url.toString(), { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var main = document.getElementById("content");
        var focused = document.activeElement && document.activeElement.id;
        var open = Array.prototype.map.call(main.querySelectorAll("details[open]"), function (d) { return d.id; });
        main.innerHTML = html;
        open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
        if (focused) { var f = document.getElementById(focused); if (f) { f.focus({ preventScroll: true }); } }
        document.body.setAttribute("data-updated", String(Date.now()));
      })
      .catch(function () { say("update failed; retrying"); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var es = new EventSource("/events");
  es.addEventListener("open", function () { say("live"); });
  es.addEventListener("error", function () { say("reconnecting…"); });
  es.addEventListener("seq", function (e) {
    var seq = document.getElementById("seq");
    if (seq && seq.textContent === e.data) { return; }
    if (seq) { seq.textContent = e.data; }
    refresh();
  });
})();
