/* mpraft timeline viewer: draws the JSON in #data (docs/timeline.md) as SVG.
 *
 * Only what is visible is drawn, and redrawn on every zoom or pan (one
 * innerHTML per frame), so a big run costs what fits on the screen: role
 * spans and marks are few; client ops shorter than a pixel merge with their
 * neighbours of the same outcome (never an unorderable one); datagram
 * counts are summed into pixel columns; index lines keep a point per pixel.
 * Tooltips are computed on hover from the element's data-k ("kind:index").
 */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("data").textContent);
  var view = document.getElementById("view");
  var tip = document.getElementById("tip");
  var NS = "http://www.w3.org/2000/svg";
  var LABEL = 92, RIGHT = 12, AXIS = 24;
  var NODE_H = 46, BAND = 18, FAULT_H = 30, DENS_H = 34, OP_H = 11;
  var unit = D.unit === "ms" ? "ms" : "ticks";
  // A little room after the last moment, so a violation there shows.
  var t0 = D.t0, t1 = Math.max(D.t1, D.t0 + 1) + Math.max(1, (D.t1 - D.t0) * 0.01);
  var v0 = t0, v1 = t1;
  var width = 1000, scale = 1;
  var nodes = D.nodes, roles = D.roles;
  var rowOf = {};
  nodes.forEach(function (n, k) { rowOf[n] = k; });
  var ops = D.ops || null;
  var procRow = {};
  if (ops) ops.procs.forEach(function (p, k) { procRow[p] = k; });

  // -- layout: y of every lane ----------------------------------------------
  var Y = { nodes: [] };
  var y = AXIS;
  nodes.forEach(function () { Y.nodes.push(y); y += NODE_H; });
  Y.fault = y; y += FAULT_H;
  Y.dens = y; y += DENS_H;
  if (ops) { Y.ops = y + 4; y += 8 + ops.procs.length * OP_H; }
  var HEIGHT = y + 6;

  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }
  function X(t) { return LABEL + (t - v0) * scale; }
  function fmt(t) { return unit === "ms" ? (t / 1000).toFixed(t < 10000 ? 3 : 1) + " s" : String(t); }
  function dur(a, b) { return (b - a) + " " + unit; }
  function lower(arr, t, key) {  // first i with arr[i][key] >= t (arr sorted by key)
    var lo = 0, hi = arr.length;
    while (lo < hi) { var m = (lo + hi) >> 1; if (arr[m][key] < t) lo = m + 1; else hi = m; }
    return lo;
  }
  function r1(v) { return Math.round(v * 10) / 10; }

  // -- static parts: header, legend -----------------------------------------
  function header() {
    document.getElementById("title").textContent = "mpraft timeline: " + D.title;
    document.title = "mpraft timeline: " + D.title;
    var cmd = document.getElementById("cmd");
    cmd.textContent = D.command || "";
    var h = [];
    (D.meta || []).forEach(function (kv) {
      var v = typeof kv[1] === "string" ? kv[1] : JSON.stringify(kv[1]);
      h.push("<span>" + esc(kv[0]) + " <b>" + esc(v) + "</b></span>");
    });
    if (ops) {
      var lin = ops.linearizable;
      h.push('<span class="badge ' + (lin === false ? "bad" : "good") + '" id="verdict">' +
             (lin === false ? "not linearizable: " + ops.unorderable.length +
              " ops lincheck could not order (key " + esc(ops.key) + ")"
              : lin === true ? "linearizable" : "linearizability not checked") + "</span>");
    }
    if (D.violations && D.violations.length)
      h.push('<span class="badge bad" id="violations">' + D.violations.length +
             " safety violation" + (D.violations.length > 1 ? "s" : "") + "</span>");
    document.getElementById("meta").innerHTML = h.join(" ");
    var lg = [["r-leader", "leader"], ["r-candidate", "candidate"],
              ["r-pre-candidate", "pre-candidate"], ["r-follower", "follower"],
              ["r-learner", "learner"], ["r-down", "down"]].concat(
               roles.indexOf("paused") >= 0 ? [["r-paused", "paused"], ["r-silent", "no answer"]] : []).concat([
              ["commit", "commit (line)"],
              ["fault", "partition"], ["o-ok", "op ok"], ["o-fail", "op fail"],
              ["o-info", "op info"], ["unorderable", "unorderable op"]]);
    var colors = {"commit": "#2b8a3e", "fault": "#ffe3e3", "o-ok": "#40c057",
                  "o-fail": "#fab005", "o-info": "#a5a5b5", "unorderable": "#e03131"};
    var pal = {"r-leader": "#2f6fd1", "r-candidate": "#f0a33a", "r-pre-candidate": "#f6d365",
               "r-follower": "#cfd8e3", "r-learner": "#a8d8d0", "r-down": "#3b3b44",
               "r-paused": "#9775fa", "r-silent": "#868e96"};
    document.getElementById("legend").innerHTML = lg.map(function (e) {
      return '<i style="background:' + (pal[e[0]] || colors[e[0]]) + '"></i>' + e[1];
    }).join("") + " &nbsp; wheel: zoom, drag: pan, double-click: zoom in";
    if (D.trace && D.trace.length) {
      document.getElementById("trace").textContent = D.trace.map(function (l) {
        return l[0] + " " + l[1];
      }).join("\n");
      document.getElementById("tracebox").style.display = "";
    }
  }

  // -- drawing ----------------------------------------------------------------
  function axis(out) {
    var span = v1 - v0, target = width / 90, raw = span / target;
    var p = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10)), step = p;
    [1, 2, 5, 10].some(function (m) { step = m * p; return raw <= step; });
    step = Math.max(1, step);
    out.push('<g class="axis">');
    for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      var x = r1(X(t));
      out.push('<line class="grid" x1="' + x + '" x2="' + x + '" y1="' + AXIS + '" y2="' +
               HEIGHT + '"></line><text x="' + x + '" y="14" text-anchor="middle">' +
               esc(fmt(t)) + "</text>");
    }
    out.push('<text x="4" y="14">' + unit + "</text></g>");
  }

  function lanes(out) {
    nodes.forEach(function (n, k) {
      out.push('<g class="lane" data-lane="node-' + n + '"><rect class="lanebg' +
               (k % 2 ? " alt" : "") + '" x="0" y="' + Y.nodes[k] + '" width="' +
               (LABEL + width + RIGHT) + '" height="' + NODE_H + '"></rect><text class="lanelabel" x="6" y="' +
               (Y.nodes[k] + 13) + '">node ' + n + '</text><text class="sublabel" x="6" y="' +
               (Y.nodes[k] + 34) + '">commit/applied</text></g>');
    });
    out.push('<g class="lane" data-lane="faults"><text class="lanelabel" x="6" y="' +
             (Y.fault + 18) + '">faults</text></g>');
    out.push('<g class="lane" data-lane="messages"><rect class="lanebg alt" x="0" y="' + Y.dens +
             '" width="' + (LABEL + width + RIGHT) + '" height="' + DENS_H +
             '"></rect><text class="lanelabel" x="6" y="' + (Y.dens + 14) +
             '">' + esc(D.density.label || "datagrams") + '</text><text class="sublabel" x="6" y="' +
             (Y.dens + 26) + '">' + esc(D.density.sublabel || "sent / lost") + "</text></g>");
    if (ops) {
      out.push('<g class="lane" data-lane="clients">');
      ops.procs.forEach(function (p, k) {
        out.push('<text class="sublabel" x="6" y="' + (Y.ops + k * OP_H + 9) + '">client ' +
                 p + "</text>");
      });
      out.push("</g>");
    }
  }

  function spans(out) {
    out.push('<g id="spans">');
    D.spans.forEach(function (sp, k) {
      var n = nodes[k], y0 = Y.nodes[k] + 2;
      for (var i = 0; i < sp.length; i++) {
        var s = sp[i];
        if (s[1] < v0 || s[0] > v1) continue;
        var a = Math.max(X(s[0]), LABEL), b = Math.min(X(Math.max(s[1], s[0] + 1)), LABEL + width);
        var w = Math.max(b - a, 0.8), role = roles[s[2]];
        out.push('<rect class="span r-' + role + '" data-k="s:' + k + ":" + i + '" data-node="' + n +
                 '" data-role="' + role + '" data-term="' + s[3] + '" x="' + r1(a) + '" y="' + y0 +
                 '" width="' + r1(w) + '" height="' + BAND + '"></rect>');
        if (w > 22 && s[3] >= 0)
          out.push('<text class="spantext' + (role === "follower" || role === "pre-candidate" ||
                   role === "learner" || role === "removed" ? " dark" : "") + '" x="' + r1(a + 3) +
                   '" y="' + (y0 + 12) + '">t' + s[3] + "</text>");
      }
    });
    out.push("</g>");
  }

  function elections(out) {
    out.push('<g id="elections">');
    D.elections.forEach(function (e, i) {
      if (e[0] < v0 || e[0] > v1) return;
      var x = r1(X(e[0])), y0 = Y.nodes[rowOf[e[1]]] + 2;
      out.push('<path class="election' + (e[3] ? " pre" : "") + '" data-k="e:' + i + '" d="M' + (x - 4) +
               "," + (y0 - 1) + "h8l-4,6z" + '"></path>');
    });
    D.votes.forEach(function (v, i) {
      if (v[0] < v0 || v[0] > v1 || v[1] === v[2]) return;
      out.push('<circle class="vote' + (v[4] ? " pre" : "") + '" data-k="v:' + i + '" cx="' + r1(X(v[0])) + '" cy="' +
               (Y.nodes[rowOf[v[1]]] + BAND + 4) + '" r="2.5"></circle>');
    });
    out.push("</g>");
  }

  function msgs(out) {
    var ms = D.msgs, a = lower(ms, v0 - 1, 0), b = lower(ms, v1 + 1, 0);
    // Drawn one by one only once zoomed in enough to read them; the density
    // lane shows them at every zoom.
    if (b - a > 400 || (b - a > 60 && scale < 1.5)) return;
    var types = D.msg_types;
    out.push('<g id="msgs">');
    for (var i = a; i < b; i++) {
      var m = ms[i], ra = rowOf[m[1]], rb = rowOf[m[2]];
      if (ra === undefined || rb === undefined) continue;
      var ty = types[m[3]], cls = "msg" + (ty.indexOf("resp") >= 0 ? " resp" : "") +
        (ty === "snap" ? " snap" : "") + (m[6] ? " lost" : "");
      var dt = unit === "ms" ? 2 : 1;
      out.push('<line class="' + cls + '" data-k="m:' + i + '" x1="' + r1(X(m[0])) + '" y1="' +
               (Y.nodes[ra] + 11) + '" x2="' + r1(X(m[0] + dt)) + '" y2="' + (Y.nodes[rb] + 11) +
               '"></line>');
    }
    out.push("</g>");
  }

  var idxRange = [0, 1];
  function indexes(out) {
    // y scale from the values visible now, so a lagging node shows when zoomed in
    var lo = Infinity, hi = -Infinity;
    D.index.forEach(function (pts) {
      var a = Math.max(0, lower(pts, v0, 0) - 1), b = Math.min(pts.length, lower(pts, v1, 0) + 1);
      for (var i = a; i < b; i++) {
        if (pts[i][2] < lo) lo = pts[i][2];
        if (pts[i][1] > hi) hi = pts[i][1];
      }
    });
    if (!(hi >= lo)) { lo = 0; hi = 1; }
    if (hi === lo) hi = lo + 1;
    idxRange = [lo, hi];
    out.push('<g id="indexes">');
    D.index.forEach(function (pts, k) {
      var top = Y.nodes[k] + BAND + 8, h = NODE_H - BAND - 11;
      function yy(v) { return r1(top + h - (v - lo) / (hi - lo) * h); }
      out.push('<rect class="idx-area" data-k="i:' + k + '" x="' + LABEL + '" y="' + (top - 2) +
               '" width="' + width + '" height="' + (h + 4) + '"></rect>');
      var a = Math.max(0, lower(pts, v0, 0) - 1), b = Math.min(pts.length, lower(pts, v1, 0) + 1);
      if (b - a < 1) return;
      ["commit", "applied"].forEach(function (name, col) {
        var d = [], lastX = -1;
        for (var i = a; i < b; i++) {
          var x = r1(Math.min(Math.max(X(pts[i][0]), LABEL), LABEL + width));
          if (x === lastX && i < b - 1) continue;
          if (d.length) d.push("H" + x + "V" + yy(pts[i][col + 1]));
          else d.push("M" + x + "," + yy(pts[i][col + 1]));
          lastX = x;
        }
        var end = D.spans[k].length ? Math.min(X(D.t1), LABEL + width) : lastX;
        d.push("H" + r1(Math.max(end, lastX)));
        out.push('<path class="' + name + '" d="' + d.join("") + '"></path>');
      });
    });
    out.push("</g>");
  }

  function snaps(out) {
    out.push('<g id="snaps">');
    D.snaps.forEach(function (s, i) {
      if (s[0] < v0 || s[0] > v1) return;
      var r = rowOf[s[1]];
      if (r === undefined) return;
      var x = r1(X(s[0])), yc = Y.nodes[r] + BAND + 6;
      if (s[2] === 0)
        out.push('<rect class="snap taken" data-k="n:' + i + '" x="' + (x - 2.5) + '" y="' + (yc - 2.5) +
                 '" width="5" height="5"></rect>');
      else if (s[2] === 1)
        out.push('<path class="snap installed" data-k="n:' + i + '" d="M' + x + "," + (yc - 4) +
                 "l4,4l-4,4l-4,-4z" + '"></path>');
    });
    out.push("</g>");
  }

  function faults(out) {
    out.push('<g id="faults">');
    var fy = Y.fault + 4, fh = FAULT_H - 8;
    D.faults.forEach(function (f, i) {
      if (f[1] < v0 || f[0] > v1) return;
      var a = Math.max(X(f[0]), LABEL), b = Math.min(X(Math.max(f[1], f[0] + 1)), LABEL + width);
      var w = Math.max(b - a, 1);
      out.push('<rect class="fault ' + esc(f[2]) + '" data-k="f:' + i + '" x="' + r1(a) + '" y="' + fy +
               '" width="' + r1(w) + '" height="' + fh + '"></rect>');
      if (w > 60) out.push('<text class="faulttext" x="' + r1(a + 3) + '" y="' + (fy + 12) + '">' +
                           esc(f[4]).slice(0, Math.floor(w / 5)) + "</text>");
      (f[3] || []).forEach(function (n) {
        var r = rowOf[n];
        if (r !== undefined)
          out.push('<rect class="faultshade" x="' + r1(a) + '" y="' + Y.nodes[r] + '" width="' + r1(w) +
                   '" height="' + NODE_H + '"></rect>');
      });
    });
    var known = {crash: 1, kill: 1, powercut: 1, arm: 1, restart: 1, resume: 1, rejoin: 1,
                 conf: 1, remove: 1, transfer: 1, pause: 1};
    D.marks.forEach(function (m, i) {
      if (m[0] < v0 || m[0] > v1) return;
      var x = r1(X(m[0])), r = rowOf[m[2]], cls = "mark " + (known[m[1]] ? m[1] : "other");
      var ya = r === undefined ? Y.fault + 2 : Y.nodes[r] + 1, yb = r === undefined ? Y.fault + FAULT_H - 2
        : m[1] === "arm" ? Y.nodes[r] + BAND + 2 : Y.nodes[r] + NODE_H - 2;
      out.push('<line class="' + cls + '" data-k="k:' + i + '" x1="' + x + '" x2="' + x + '" y1="' + ya +
               '" y2="' + yb + '"></line>');
      if (r !== undefined && (m[1] === "crash" || m[1] === "kill" || m[1] === "powercut"))
        out.push('<path class="' + cls + '" data-k="k:' + i + '" d="M' + (x - 4) + "," + (ya + 1) + "l8,8m0,-8l-8,8" +
                 '"></path>');
    });
    D.confs.forEach(function (c, i) {
      if (c[0] < v0 || c[0] > v1) return;
      var x = r1(X(c[0]));
      out.push('<path class="conf" data-k="c:' + i + '" d="M' + x + "," + (Y.fault + FAULT_H - 12) +
               "l5,5l-5,5l-5,-5z" + '"></path>');
    });
    out.push("</g>");
  }

  function density(out) {
    var den = D.density, B = den.bucket, sent = den.sent, lost = den.lost;
    var n = 0;
    sent.forEach(function (r) { if (r.length > n) n = r.length; });
    var ba = Math.max(0, Math.floor(v0 / B)), bb = Math.min(n, Math.ceil(v1 / B) + 1);
    var per = Math.max(1, Math.ceil(2 / (B * scale)));  // buckets per column (>= 2 px)
    var cols = [], max = 1;
    for (var b = ba - ba % per; b < bb; b += per) {
      var s = 0, l = 0;
      for (var j = b; j < b + per && j < n; j++) {
        for (var r = 0; r < sent.length; r++) {
          s += sent[r][j] || 0;
          l += (lost[r] && lost[r][j]) || 0;
        }
      }
      cols.push([b, s, l]);
      if (s > max) max = s;
    }
    out.push('<g id="density">');
    var h = DENS_H - 6, base = Y.dens + DENS_H - 3;
    cols.forEach(function (c) {
      var a = Math.max(X(c[0] * B), LABEL), e = Math.min(X((c[0] + per) * B), LABEL + width);
      if (e <= a) return;
      var hs = c[1] / max * h, hl = c[2] / max * h, k = 'data-k="d:' + c[0] + ":" + per + '"';
      out.push('<rect class="dens" ' + k + ' x="' + r1(a) + '" y="' + r1(base - hs) + '" width="' +
               r1(Math.max(e - a - 0.3, 0.6)) + '" height="' + r1(hs) + '"></rect>');
      if (c[2]) out.push('<rect class="dens lost" ' + k + ' x="' + r1(a) + '" y="' + r1(base - hl) +
                         '" width="' + r1(Math.max(e - a - 0.3, 0.6)) + '" height="' + r1(hl) + '"></rect>');
    });
    out.push("</g>");
  }

  function opBars(out) {
    if (!ops) return;
    out.push('<g id="ops">');
    var rows = ops.rows, last = {};  // proc -> [x0, x1, cls, count, first index] being merged
    function flush(p) {
      var m = last[p];
      if (!m) return;
      out.push('<rect class="op ' + m[2] + '" data-k="o:' + m[4] + (m[3] > 1 ? ":" + m[3] : "") +
               '" x="' + r1(m[0]) + '" y="' + (Y.ops + procRow[p] * OP_H + 1) + '" width="' +
               r1(Math.max(m[1] - m[0], 1)) + '" height="' + (OP_H - 2) + '"></rect>');
      last[p] = null;
    }
    for (var i = 0; i < rows.length; i++) {
      var o = rows[i], end = o[4] < 0 ? D.t1 : o[4];
      if (end < v0 || o[3] > v1) continue;
      var a = Math.max(X(o[3]), LABEL), b = Math.min(X(Math.max(end, o[3] + 0.5)), LABEL + width);
      var p = o[0], cls = "o-" + o[5], m = last[p];
      if (o[8]) {
        flush(p);
        out.push('<rect class="op unorderable ' + cls + '" data-k="o:' + i + '" data-line="' + o[7] +
                 '" x="' + r1(a) + '" y="' + (Y.ops + procRow[p] * OP_H) + '" width="' +
                 r1(Math.max(b - a, 2)) + '" height="' + OP_H + '"></rect>');
        continue;
      }
      if (m && m[2] === cls && b - a < 2 && a - m[1] < 1.5 && m[1] - m[0] < 3) {
        m[1] = Math.max(m[1], b);
        m[3] += 1;
        continue;
      }
      flush(p);
      last[p] = [a, b, cls, 1, i];
    }
    Object.keys(last).forEach(flush);
    out.push("</g>");
  }

  function violations(out) {
    out.push('<g id="viol">');
    (D.violations || []).forEach(function (v, i) {
      if (v[0] < v0 || v[0] > v1) return;
      var x = r1(X(v[0]));
      out.push('<line class="violation" data-k="x:' + i + '" x1="' + x + '" x2="' + x + '" y1="' + AXIS +
               '" y2="' + HEIGHT + '"></line><text class="violtext" text-anchor="end" x="' + (x - 3) +
               '" y="' + (AXIS + 10) + '">violation</text>');
    });
    out.push("</g>");
  }

  var svg = null, pending = false;
  function render() {
    pending = false;
    width = Math.max(200, view.clientWidth - LABEL - RIGHT);
    scale = width / (v1 - v0);
    var out = ['<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" ' +
               'patternTransform="rotate(45)"><rect width="2" height="6" fill="rgba(224,49,49,.18)">' +
               "</rect></pattern><clipPath id=\"clip\"><rect x=\"" + LABEL + '" y="0" width="' + width +
               '" height="' + HEIGHT + '"></rect></clipPath></defs>'];
    lanes(out);
    axis(out);
    out.push('<g clip-path="url(#clip)">');
    spans(out); faults(out); indexes(out); snaps(out); elections(out); msgs(out);
    density(out); opBars(out); violations(out);
    out.push("</g>");
    if (!svg) {
      svg = document.createElementNS(NS, "svg");
      svg.setAttribute("id", "chart");
      view.appendChild(svg);
    }
    svg.setAttribute("width", LABEL + width + RIGHT);
    svg.setAttribute("height", HEIGHT);
    svg.innerHTML = out.join("");
    document.getElementById("range").textContent = fmt(Math.round(v0)) + " - " + fmt(Math.round(v1)) +
      " " + (unit === "ms" ? "" : unit);
  }
  function redraw() {
    if (!pending) { pending = true; requestAnimationFrame(render); }
  }

  // -- zoom and pan -------------------------------------------------------------
  function setRange(a, b) {
    var minSpan = unit === "ms" ? 5 : 4;
    if (b - a < minSpan) { var c = (a + b) / 2; a = c - minSpan / 2; b = c + minSpan / 2; }
    if (b - a > t1 - t0) { a = t0; b = t1; }
    if (a < t0) { b += t0 - a; a = t0; }
    if (b > t1) { a -= b - t1; b = t1; }
    v0 = Math.max(t0, a); v1 = b;
    redraw();
  }
  function zoomAt(t, f) { setRange(t - (t - v0) * f, t + (v1 - t) * f); }
  function tAt(clientX) {
    var r = view.getBoundingClientRect();
    return v0 + (clientX - r.left - LABEL) / scale;
  }
  view.addEventListener("wheel", function (e) {
    e.preventDefault();
    if (Math.abs(e.deltaX) > Math.abs(e.deltaY) || e.shiftKey) {
      var d = (e.deltaX || e.deltaY) / scale;
      setRange(v0 + d, v1 + d);
    } else {
      zoomAt(tAt(e.clientX), e.deltaY > 0 ? 1.25 : 0.8);
    }
  }, { passive: false });
  var drag = null;
  view.addEventListener("mousedown", function (e) {
    drag = { x: e.clientX, a: v0, b: v1 };
    view.classList.add("dragging");
  });
  window.addEventListener("mouseup", function () { drag = null; view.classList.remove("dragging"); });
  window.addEventListener("mousemove", function (e) {
    if (!drag) return;
    var d = (drag.x - e.clientX) / scale;
    setRange(drag.a + d, drag.b + d);
  });
  view.addEventListener("dblclick", function (e) { zoomAt(tAt(e.clientX), 0.5); });
  function btn(id, f) { document.getElementById(id).addEventListener("click", f); }
  btn("zin", function () { zoomAt((v0 + v1) / 2, 0.5); });
  btn("zout", function () { zoomAt((v0 + v1) / 2, 2); });
  btn("zall", function () { setRange(t0, t1); });
  btn("left", function () { var d = (v1 - v0) / 3; setRange(v0 - d, v1 - d); });
  btn("right", function () { var d = (v1 - v0) / 3; setRange(v0 + d, v1 + d); });
  function focus(a, b) { var pad = Math.max((b - a) * 0.3, 10); setRange(a - pad, b + pad); }
  var jump = document.getElementById("jump");
  if (ops && ops.linearizable === false && ops.unorderable.length) {
    jump.style.display = "";
    jump.textContent = "show unorderable ops";
    jump.addEventListener("click", function () {
      var a = Infinity, b = -Infinity;
      ops.rows.forEach(function (o) {
        if (o[8]) { a = Math.min(a, o[3]); b = Math.max(b, o[4] < 0 ? D.t1 : o[4]); }
      });
      focus(a, b);
    });
  } else if (D.violations && D.violations.length) {
    jump.style.display = "";
    jump.textContent = "show the violation";
    jump.addEventListener("click", function () {
      var t = D.violations[0][0];
      focus(t - 150, t + 20);
    });
  }
  window.addEventListener("keydown", function (e) {
    if (e.key === "+" || e.key === "=") zoomAt((v0 + v1) / 2, 0.5);
    else if (e.key === "-") zoomAt((v0 + v1) / 2, 2);
    else if (e.key === "0") setRange(t0, t1);
    else if (e.key === "ArrowLeft") { var d = (v1 - v0) / 5; setRange(v0 - d, v1 - d); }
    else if (e.key === "ArrowRight") { var d2 = (v1 - v0) / 5; setRange(v0 + d2, v1 + d2); }
  });
  window.addEventListener("resize", redraw);

  // -- tooltips -------------------------------------------------------------------
  function describe(k, e) {
    var p = k.split(":"), c = p[0], i = +p[1];
    if (c === "s") {
      var s = D.spans[i][+p[2]];
      return "node " + nodes[i] + ": " + roles[s[2]] + (s[3] >= 0 ? ", term " + s[3] : "") + "\n" +
        fmt(s[0]) + " - " + fmt(s[1]) + " (" + dur(s[0], s[1]) + ")";
    }
    if (c === "e") {
      var el = D.elections[i];
      return "node " + el[1] + " campaigns" + (el[3] ? " (pre-vote)" : "") + " for term " + el[2] +
        " at " + fmt(el[0]);
    }
    if (c === "v") {
      var v = D.votes[i];
      return "node " + v[1] + (v[4] ? " grants a pre-vote to node " + v[2] + " (its own term " + v[3] + ")"
                               : " votes for node " + v[2] + " in term " + v[3]) + " at " + fmt(v[0]);
    }
    if (c === "m") {
      var m = D.msgs[i];
      return D.msg_types[m[3]] + " " + m[1] + " -> " + m[2] + ", term " + m[5] +
        (m[4] & 1 ? ", rejected" : "") + (m[6] ? ", LOST" : "") + " at " + fmt(m[0]);
    }
    if (c === "i") {
      var pts = D.index[i], t = tAt(e.clientX), j = lower(pts, t + 1e-9, 0) - 1;
      if (j < 0) return "node " + nodes[i] + ": nothing committed yet";
      return "node " + nodes[i] + " at " + fmt(Math.round(t)) + ": commit " + pts[j][1] + ", applied " +
        pts[j][2] + "\n(lines scaled to " + idxRange[0] + " - " + idxRange[1] + " in view)";
    }
    if (c === "n") {
      var s2 = D.snaps[i], what = ["took a snapshot at applied index ", "installed a snapshot at index ",
                                   "sends a snapshot at index "][s2[2]];
      return "node " + s2[1] + " " + what + s2[3] + (s2[2] === 2 ? " to node " + s2[4] : "") + " (" +
        fmt(s2[0]) + ")";
    }
    if (c === "f") {
      var f = D.faults[i];
      return f[2] + ": " + f[4] + "\n" + fmt(f[0]) + " - " + fmt(f[1]) + " (" + dur(f[0], f[1]) + ")";
    }
    if (c === "k") {
      var mk = D.marks[i];
      return fmt(mk[0]) + ": " + mk[1] + (mk[2] ? " node " + mk[2] : "") + (mk[3] ? ": " + mk[3] : "");
    }
    if (c === "c") {
      var cf = D.confs[i];
      return "membership committed at index " + cf[1] + " (" + fmt(cf[0]) + ")\nvoters " +
        JSON.stringify(cf[2]) + ", learners " + JSON.stringify(cf[3]);
    }
    if (c === "d") {
      var den = D.density, B = den.bucket, per = +p[2], s3 = 0, l3 = 0;
      for (var b = i; b < i + per; b++)
        for (var r = 0; r < den.sent.length; r++) { s3 += den.sent[r][b] || 0; l3 += den.lost[r][b] || 0; }
      if (den.label === "client ops")
        return fmt(i * B) + " - " + fmt((i + per) * B) + ": " + s3 + " client ops completed ok, " + l3 +
          " failed or unknown (info)";
      return fmt(i * B) + " - " + fmt((i + per) * B) + ": " + s3 + " datagrams sent, " + l3 + " lost" +
        (s3 ? " (" + Math.round(100 * l3 / s3) + "%)" : "");
    }
    if (c === "o") {
      var o = ops.rows[i], n = p.length > 2 ? +p[2] : 1;
      var txt = "client " + o[0] + ": " + o[1] + " " + o[2] + (o[6] ? " " + o[6] : "") + " -> " + o[5] +
        "\ninvoked " + fmt(o[3]) + (o[4] >= 0 ? ", completed " + fmt(o[4]) + " (" + dur(o[3], o[4]) + ")"
                                       : ", never completed") + "\nhistory line " + o[7];
      if (o[8]) txt += "\nUNORDERABLE: lincheck found no order of the ops on key " + ops.key +
        " that explains this one";
      if (n > 1) txt += "\n(+" + (n - 1) + " more " + o[5] + " ops merged at this zoom)";
      return txt;
    }
    if (c === "x") return D.violations[i][1];
    return "";
  }
  view.addEventListener("mousemove", function (e) {
    if (drag) { tip.style.display = "none"; return; }
    var el = e.target, k = el && el.getAttribute && el.getAttribute("data-k");
    if (!k) { tip.style.display = "none"; return; }
    tip.textContent = describe(k, e);
    tip.style.display = "block";
    var x = e.clientX + 14, yy = e.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) x = e.clientX - tip.offsetWidth - 8;
    if (yy + tip.offsetHeight > window.innerHeight) yy = e.clientY - tip.offsetHeight - 8;
    tip.style.left = x + "px";
    tip.style.top = yy + "px";
  });
  view.addEventListener("mouseleave", function () { tip.style.display = "none"; });

  // #range=A-B in the address opens the page zoomed on A..B.
  var hm = /range=(-?[\d.]+)-(-?[\d.]+)/.exec(location.hash);
  if (hm) setRange(+hm[1], +hm[2]);
  pending = false;
  header();
  render();
  document.body.setAttribute("data-rendered", "1");
  document.body.setAttribute("data-render-ms", String(Math.round(performance.now())));
  window.mpraftTimeline = { setRange: setRange, describe: describe, data: D };
})();
