// opsbook UI behaviour that htmx does not cover: the live log's
// autoscroll and DOM cap, and print buttons. No inline scripts (the
// Content-Security-Policy forbids them).
(function () {
  "use strict";
  var stick = true;

  function logBox() { return document.getElementById("log"); }

  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 24; }

  // Keep at most data-max-lines lines of log in the page; older chunks are
  // dropped (the full log stays downloadable), so a run printing
  // 100,000+ lines never grows the DOM without bound.
  function trim(box) {
    var lines = box.querySelector("#log-lines");
    var max = parseInt(box.dataset.maxLines || "5000", 10);
    var total = parseInt(lines.dataset.total || "0", 10);
    var hidden = parseInt(lines.dataset.hidden || "0", 10);
    var added = 0;
    lines.querySelectorAll(".chunk:not([data-counted])").forEach(function (c) {
      c.dataset.counted = "1";
      added += parseInt(c.dataset.lines || "0", 10);
    });
    total += added;
    while (total - hidden > max && lines.firstElementChild) {
      var first = lines.firstElementChild;
      hidden += parseInt(first.dataset.lines || "0", 10);
      first.remove();
    }
    lines.dataset.total = total;
    lines.dataset.hidden = hidden;
    var note = document.getElementById("log-hidden");
    if (note && hidden > 0) {
      note.hidden = false;
      note.textContent = note.dataset.text ? note.dataset.text.replace("{n}", hidden) : hidden + " earlier lines not shown";
    }
  }

  document.addEventListener("scroll", function (e) {
    var box = logBox();
    if (e.target !== box) return;
    stick = atBottom(box);
    var follow = document.getElementById("log-follow");
    if (follow) follow.hidden = stick;
  }, true);

  document.addEventListener("htmx:sseMessage", function (e) {
    var box = logBox();
    if (!box || !box.contains(e.target)) return;
    trim(box);
    if (stick) box.scrollTop = box.scrollHeight;
  });

  document.addEventListener("click", function (e) {
    var t = e.target;
    if (t.id === "log-follow") {
      var box = logBox();
      stick = true;
      box.scrollTop = box.scrollHeight;
      t.hidden = true;
    }
    if (t.hasAttribute && t.hasAttribute("data-print")) window.print();
  });
})();
