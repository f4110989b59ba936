// opsbook UI behaviour that htmx does not cover: the log viewer, ticking
// durations, the run panel's ordering, confirmations and print buttons.
// No inline scripts (the Content-Security-Policy forbids them), and no
// output ever goes through innerHTML: rows are built with textContent.
(function () {
  "use strict";

  // ---- The log viewer -------------------------------------------------
  // The server cuts the log into pages of whole rows (GET
  // /runs/{id}/log/rows?line=N answers the page holding line N). The
  // viewer keeps a fixed row height, sizes a spacer for every row, and
  // builds DOM only for the rows in view, fetching their pages on demand:
  // a log of a million lines costs what a screenful costs. Step sections
  // collapse to their first row; search asks the server for the matching
  // line numbers and highlights them in the rows shown.
  var ROW = 20, OVERSCAN = 30, KEEP_PAGES = 60;
  var CLASS_OK = /^[a-z0-9 ]*$/;

  function Viewer(box) {
    this.box = box;
    this.run = box.dataset.run;
    this.rowsEl = box.querySelector("#log-lines");
    this.space = box.querySelector("#log-space");
    this.total = 0;
    this.seq = 0;
    this.pages = [];          // loaded pages {first, rows}, sorted by first
    this.pending = {};        // line -> true while its page is fetched
    this.sections = [];
    this.collapsed = {};      // section key -> true
    this.follow = true;
    this.ts = false;
    this.query = "";
    this.matches = [];
    this.current = -1;
    this.finished = false;
    this.scheduled = false;
    var v = this;
    box.addEventListener("scroll", function () {
      var atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < ROW * 1.5;
      if (!v.programmatic) v.setFollow(atBottom);
      v.programmatic = false;
      v.schedule();
    });
    window.addEventListener("resize", function () { v.schedule(); });
    this.fetchPage(-1);
  }

  Viewer.prototype.setFollow = function (on) {
    this.follow = on;
    var b = document.getElementById("log-follow");
    if (b) b.hidden = on;
  };

  Viewer.prototype.key = function (s) { return s.phase + "/" + s.step + "/" + s.line; };

  // Visible ranges of lines: everything but the bodies of collapsed sections.
  Viewer.prototype.ranges = function () {
    var out = [], from = 0, secs = this.sections;
    for (var i = 0; i < secs.length; i++) {
      if (!this.collapsed[this.key(secs[i])]) continue;
      var start = secs[i].line + 1, end = i + 1 < secs.length ? secs[i + 1].line : this.total;
      if (start > from) out.push([from, start]);
      from = Math.max(from, end);
    }
    if (this.total > from) out.push([from, this.total]);
    return out;
  };

  Viewer.prototype.visibleCount = function (ranges) {
    var n = 0;
    for (var i = 0; i < ranges.length; i++) n += ranges[i][1] - ranges[i][0];
    return n;
  };

  Viewer.prototype.lineAt = function (ranges, v) {
    for (var i = 0; i < ranges.length; i++) {
      var len = ranges[i][1] - ranges[i][0];
      if (v < len) return ranges[i][0] + v;
      v -= len;
    }
    return -1;
  };

  Viewer.prototype.indexOf = function (ranges, line) {
    var v = 0;
    for (var i = 0; i < ranges.length; i++) {
      if (line < ranges[i][0]) return v;
      if (line < ranges[i][1]) return v + line - ranges[i][0];
      v += ranges[i][1] - ranges[i][0];
    }
    return v;
  };

  Viewer.prototype.row = function (line) {
    var p = this.pages;
    for (var i = p.length - 1; i >= 0; i--) {
      if (line >= p[i].first && line < p[i].first + p[i].rows.length) {
        p[i].used = Date.now();
        return p[i].rows[line - p[i].first];
      }
    }
    return null;
  };

  Viewer.prototype.fetchPage = function (line) {
    var v = this, k = String(line);
    if (this.pending[k]) return;
    this.pending[k] = true;
    fetch("/runs/" + encodeURIComponent(this.run) + "/log/rows?line=" + line, {headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) { delete v.pending[k]; v.loaded(d); })
      .catch(function () { delete v.pending[k]; setTimeout(function () { v.schedule(); }, 1000); });
  };

  Viewer.prototype.loaded = function (d) {
    if (d.seq >= this.seq) {
      this.seq = d.seq;
      this.total = Math.max(this.total, d.lines);
      this.sections = d.sections || [];
      this.finished = this.finished || d.finished;
    }
    var pg = {first: d.first, rows: d.rows, used: Date.now()};
    this.pages = this.pages.filter(function (p) { return p.first !== pg.first; });
    this.pages.push(pg);
    this.pages.sort(function (a, b) { return a.first - b.first; });
    if (this.pages.length > KEEP_PAGES) {
      var oldest = this.pages.slice().sort(function (a, b) { return a.used - b.used; })[0];
      this.pages.splice(this.pages.indexOf(oldest), 1);
    }
    this.stepsList();
    this.schedule();
  };

  // live: the stream says the log now has lines rows.
  Viewer.prototype.grew = function (m) {
    if (m.seq < this.seq) return;
    if (m.seq === this.seq && m.lines <= this.total) { this.finished = this.finished || m.finished; return; } // nothing new
    var before = this.total;
    this.total = Math.max(this.total, m.lines);
    this.finished = this.finished || m.finished;
    // The last page may have grown, and its unfinished line with it.
    var v = this;
    this.pages = this.pages.filter(function (p) {
      var last = p.rows.length && p.rows[p.rows.length - 1];
      return p.first + p.rows.length < before && !(last && last.p);
    });
    if (this.total > before || m.seq > this.seq) this.fetchPage(-1);
    this.seq = Math.max(this.seq, m.seq);
    v.schedule();
  };

  Viewer.prototype.schedule = function () {
    if (this.scheduled) return;
    this.scheduled = true;
    var v = this;
    requestAnimationFrame(function () { v.scheduled = false; v.render(); });
  };

  Viewer.prototype.render = function () {
    var box = this.box, ranges = this.ranges(), count = this.visibleCount(ranges);
    this.space.style.height = (count * ROW) + "px";
    if (this.follow) {
      var bottom = Math.max(0, count * ROW - box.clientHeight);
      if (Math.abs(box.scrollTop - bottom) > 1) { this.programmatic = true; box.scrollTop = bottom; }
    }
    var first = Math.max(0, Math.floor(box.scrollTop / ROW) - OVERSCAN);
    var last = Math.min(count, Math.ceil((box.scrollTop + box.clientHeight) / ROW) + OVERSCAN);
    var frag = document.createDocumentFragment(), missing = null, lastShown = -1;
    var heads = {};
    for (var i = 0; i < this.sections.length; i++) heads[this.sections[i].line] = this.sections[i];
    for (var vi = first; vi < last; vi++) {
      var line = this.lineAt(ranges, vi), r = this.row(line);
      if (!r && missing === null) missing = line;
      frag.appendChild(this.rowEl(line, r, heads[line]));
      if (r) lastShown = line;
    }
    this.rowsEl.style.transform = "translateY(" + (first * ROW) + "px)";
    this.rowsEl.replaceChildren(frag);
    var empty = document.getElementById("log-empty");
    if (empty) empty.hidden = count > 0;
    if (missing !== null) this.fetchPage(missing);
    if (count > 0 && !window.__logFirstPaint && lastShown >= 0) window.__logFirstPaint = performance.now();
    this.box.dataset.total = String(this.total);
    this.box.dataset.lastShown = String(lastShown);
  };

  Viewer.prototype.rowEl = function (line, r, head) {
    var el = document.createElement("div");
    el.className = "row";
    el.dataset.line = String(line);
    if (!r) { el.classList.add("loading"); el.textContent = "\u2026"; return el; }
    el.classList.add(r.k === "e" ? "err" : r.k === "m" ? "mk" : "out");
    if (r.c && CLASS_OK.test(r.c)) el.classList.add("mk-" + r.c);
    if (this.matches.length && this.matches[this.current] === line) el.classList.add("current");
    if (head) {
      var open = !this.collapsed[this.key(head)];
      var b = document.createElement("button");
      b.type = "button";
      b.className = "fold";
      b.dataset.section = this.key(head);
      b.setAttribute("aria-expanded", open ? "true" : "false");
      b.setAttribute("aria-label", this.box.dataset.toggle || "");
      b.textContent = open ? "\u25BE" : "\u25B8";
      el.appendChild(b);
      if (head.status) el.classList.add("sec-" + head.status.replace(/[^a-z_]/g, ""));
    }
    if (this.ts) {
      var t = document.createElement("span");
      t.className = "ts";
      t.textContent = stamp(r.t);
      el.appendChild(t);
    }
    if (r.h) {
      var h = document.createElement("span");
      h.className = "host";
      h.textContent = r.h;
      el.appendChild(h);
    }
    if (r.s) {
      for (var i = 0; i < r.s.length; i++) this.text(el, r.s[i][0], CLASS_OK.test(r.s[i][1]) ? r.s[i][1] : "");
    } else {
      this.text(el, r.x || "", "");
    }
    if (r.d) {
      // What was recorded (a reason, an error) is not translated: say so.
      this.text(el, ": ", "");
      var d = document.createElement("span");
      d.className = "detail";
      d.lang = "en";
      el.appendChild(d);
      this.text(d, r.d, "");
    }
    return el;
  };

  // text appends s to el, in a span of classes, with the search query
  // marked.
  Viewer.prototype.text = function (el, s, classes) {
    var target = el;
    if (classes) {
      target = document.createElement("span");
      target.className = classes.split(" ").map(function (c) { return c ? "a-" + c : ""; }).join(" ");
      el.appendChild(target);
    }
    var q = this.query;
    if (!q) { target.appendChild(document.createTextNode(s)); return; }
    var lower = s.toLowerCase(), at = 0;
    for (;;) {
      var i = lower.indexOf(q, at);
      if (i < 0) break;
      if (i > at) target.appendChild(document.createTextNode(s.slice(at, i)));
      var m = document.createElement("mark");
      m.textContent = s.slice(i, i + q.length);
      target.appendChild(m);
      at = i + q.length;
    }
    if (at < s.length) target.appendChild(document.createTextNode(s.slice(at)));
  };

  Viewer.prototype.scrollToLine = function (line) {
    for (var i = this.sections.length - 1; i >= 0; i--) {
      if (this.sections[i].line < line) { delete this.collapsed[this.key(this.sections[i])]; break; }
    }
    this.setFollow(false);
    var ranges = this.ranges(), vi = this.indexOf(ranges, line);
    this.space.style.height = (this.visibleCount(ranges) * ROW) + "px";
    this.programmatic = true;
    this.box.scrollTop = Math.max(0, vi * ROW - this.box.clientHeight / 3);
    this.render();
  };

  Viewer.prototype.toggle = function (key) {
    if (this.collapsed[key]) delete this.collapsed[key]; else this.collapsed[key] = true;
    this.setFollow(false);
    this.render();
    this.stepsList();
  };

  Viewer.prototype.foldAll = function (collapse) {
    var v = this;
    this.collapsed = {};
    if (collapse) this.sections.forEach(function (s) { v.collapsed[v.key(s)] = true; });
    this.setFollow(false);
    this.render();
  };

  Viewer.prototype.failedSection = function () {
    for (var i = 0; i < this.sections.length; i++) if (this.sections[i].status === "failed") return this.sections[i];
    return null;
  };

  Viewer.prototype.stepsList = function () {
    var b = document.getElementById("log-failed");
    if (b) b.hidden = !this.failedSection();
  };

  Viewer.prototype.search = function (q) {
    var v = this, count = document.getElementById("log-count");
    q = q.trim().toLowerCase();
    this.query = q;
    this.matches = [];
    this.current = -1;
    if (!q) { count.textContent = ""; this.render(); return; }
    fetch("/runs/" + encodeURIComponent(this.run) + "/log/search?q=" + encodeURIComponent(q), {headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (v.query !== q) return;
        v.matches = d.lines || [];
        v.capped = d.truncated;
        if (!v.matches.length) { count.textContent = count.dataset.none; v.render(); return; }
        v.step(0);
      });
  };

  Viewer.prototype.step = function (delta) {
    if (!this.matches.length) return;
    this.current = (this.current + delta + this.matches.length) % this.matches.length;
    var count = document.getElementById("log-count");
    count.textContent = (count.dataset.of || "%d / %d").replace("%d", this.current + 1).replace("%d", this.matches.length + (this.capped ? "+" : ""));
    this.scrollToLine(this.matches[this.current]);
  };

  function pad(n, w) { n = String(n); while (n.length < w) n = "0" + n; return n; }
  function stamp(ms) {
    var d = new Date(ms);
    return pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2) + "." + pad(d.getMilliseconds(), 3);
  }

  var viewer = null;
  function boot() {
    var box = document.getElementById("log");
    if (box && box.dataset.run && !viewer) viewer = window.__logViewer = new Viewer(box);
    tick();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot); else boot();

  // The stream's "log" event carries JSON for the viewer, not HTML: take
  // it before htmx would swap it.
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    if (e.target.id === "log-meta") {
      e.preventDefault();
      if (viewer) { try { viewer.grew(JSON.parse(e.detail.data)); } catch (err) { /* a malformed message changes nothing */ } }
      return;
    }
    if (e.target.id === "panel" && stale(e.detail.data)) e.preventDefault();
  });

  // ---- The run panel never goes back in time -----------------------
  // The panel carries the log sequence number of the state it shows. An
  // answer's response and the stream race; whichever arrives, the panel
  // keeps the newest state.
  function seqOf(html) {
    var m = /data-seq="(\d+)"/.exec(html || "");
    return m ? parseInt(m[1], 10) : -1;
  }
  function stale(html) {
    var cur = document.querySelector("#panel [data-seq]");
    if (!cur) return false;
    var incoming = seqOf(html);
    return incoming >= 0 && incoming < parseInt(cur.dataset.seq, 10);
  }
  document.addEventListener("htmx:beforeSwap", function (e) {
    var t = e.detail.target;
    if (t && t.id === "panel" && e.detail.xhr && stale(e.detail.xhr.responseText)) e.detail.shouldSwap = false;
  });

  // ---- Durations tick in the browser --------------------------------
  // An element with data-since (Unix ms) shows the time since then,
  // unless it has data-until too (then it is fixed).
  function fmtDur(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + "s";
    var m = Math.floor(s / 60); s %= 60;
    if (m < 60) return m + "m" + (s ? s + "s" : "");
    var h = Math.floor(m / 60); m %= 60;
    return h + "h" + (m ? m + "m" : "");
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      if (el.dataset.until) return;
      el.textContent = fmtDur(now - parseInt(el.dataset.since, 10));
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);
  document.addEventListener("htmx:sseMessage", tick);

  // ---- Clicks -------------------------------------------------------
  document.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest("button, a, [data-print]") : e.target;
    if (!t) return;
    if (t.dataset && t.dataset.confirm && !window.confirm(t.dataset.confirm)) { e.preventDefault(); e.stopImmediatePropagation(); return; }
    if (t.hasAttribute("data-print")) { window.print(); return; }
    if (!viewer) return;
    if (t.classList.contains("fold")) { viewer.toggle(t.dataset.section); return; }
    switch (t.id) {
      case "log-follow": viewer.setFollow(true); viewer.render(); break;
      case "log-prev": viewer.step(-1); break;
      case "log-next": viewer.step(1); break;
      case "log-collapse": viewer.foldAll(true); break;
      case "log-expand": viewer.foldAll(false); break;
      case "log-failed":
        var s = viewer.failedSection();
        if (s) viewer.scrollToLine(s.line);
        break;
    }
  }, true);

  document.addEventListener("change", function (e) {
    if (e.target.id === "log-ts" && viewer) { viewer.ts = e.target.checked; viewer.box.classList.toggle("with-ts", viewer.ts); viewer.render(); }
  });

  document.addEventListener("submit", function (e) {
    if (e.target.id === "log-search" && viewer) {
      e.preventDefault();
      var q = document.getElementById("log-q").value;
      if (q.trim().toLowerCase() === viewer.query && viewer.matches.length) viewer.step(1); else viewer.search(q);
    }
  });
})();
