// Session-Buddy console: the recording player (asciicast v2) on a small xterm-like terminal.
"use strict";
(function () {
  // A cell is {ch, a} and never changes in place, so a snapshot copies rows, not cells.
  // `a` packs fg (bits 0-4, 16 = default), bg (bits 5-9) and the flags below.
  var DEF = 16 | (16 << 5), BOLD = 1 << 10, DIM = 1 << 11, ITAL = 1 << 12, UND = 1 << 13, REV = 1 << 14;
  var GFX = "◆▒␉␌␍␊°±␤␋┘┐┌└┼⎺⎻─⎼⎽├┤┴┬│≤≥π≠£·"; // DEC special graphics for 0x60-0x7e
  var COMB = /^[\u0300-\u036f\u200b-\u200f\u20d0-\u20ff\ufe00-\ufe0f]$/;
  var PAL = [0x000000, 0xcd0000, 0x00cd00, 0xcdcd00, 0x0000ee, 0xcd00cd, 0x00cdcd, 0xe5e5e5,
    0x7f7f7f, 0xff0000, 0x00ff00, 0xffff00, 0x5c5cff, 0xff00ff, 0x00ffff, 0xffffff];
  var HTML = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
  var blanks = {}, classCache = {};

  function blank(a) { return blanks[a] || (blanks[a] = { ch: " ", a: a }); }
  function line(n, cell) { var r = []; for (var i = 0; i < n; i++) r.push(cell); return r; }
  function copyRow(r) { return r.slice(); }
  function clamp(v, n) { return Math.max(0, Math.min(n - 1, v)); }
  function fg(a, c) { return (a & ~31) | c; }
  function bg(a, c) { return (a & ~(31 << 5)) | (c << 5); }

  // The nearest of the 16 colours to an RGB.
  function nearest(r, g, b) {
    var best = 0, bd = Infinity;
    for (var i = 0; i < 16; i++) {
      var p = PAL[i], dr = (p >> 16) - r, dg = ((p >> 8) & 255) - g, db = (p & 255) - b;
      var d = dr * dr + dg * dg + db * db;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }

  function colour256(n) {
    if (n < 16) return n;
    if (n < 232) {
      var L = [0, 95, 135, 175, 215, 255];
      n -= 16;
      return nearest(L[Math.floor(n / 36)], L[Math.floor(n / 6) % 6], L[n % 6]);
    }
    var v = 8 + 10 * (n - 232);
    return nearest(v, v, v);
  }

  function classes(a) {
    if (classCache[a] !== undefined) return classCache[a];
    var f = a & 31, b = (a >> 5) & 31, k = [];
    if (a & REV) { var t = f; f = b; b = t; k.push("t-rev"); }
    if (f < 16) k.push("t-fg" + f);
    if (b < 16) k.push("t-bg" + b);
    if (a & BOLD) k.push("t-b");
    if (a & DIM) k.push("t-d");
    if (a & ITAL) k.push("t-i");
    if (a & UND) k.push("t-u");
    return (classCache[a] = k.join(" "));
  }

  function Term(cols, rows) { this.cols = cols; this.rows = rows; this.reset(); }
  var T = Term.prototype;

  T.reset = function () {
    this.main = this.grid(blank(DEF)); this.alt = this.grid(blank(DEF));
    this.buf = this.main; this.inAlt = false;
    this.x = 0; this.y = 0; this.wrap = false; this.attr = DEF;
    this.top = 0; this.bot = this.rows - 1;
    this.autowrap = true; this.cursorOn = true; this.ins = false;
    this.g = [false, false]; this.gl = 0; this.saved = [null, null]; this.last = " ";
    this.st = 0; this.seq = ""; this.gset = -1; // parser: state, CSI text, charset slot
  };
  T.grid = function (cell) {
    var g = [];
    for (var i = 0; i < this.rows; i++) g.push(line(this.cols, cell));
    return g;
  };
  // Erasing takes the current background (xterm's BCE).
  T.bce = function () { return blank((this.attr & (31 << 5)) | 16); };
  T.fill = function (y, from, to) {
    var r = this.buf[y], b = this.bce();
    for (var x = from; x < to; x++) r[x] = b;
  };
  // Scrolls the region [top, bot] up (or down) by n lines.
  T.scroll = function (n, up) {
    n = Math.min(n, this.bot - this.top + 1);
    for (var i = 0; i < n; i++) {
      var fresh = line(this.cols, this.bce());
      if (up) { this.buf.splice(this.top, 1); this.buf.splice(this.bot, 0, fresh); }
      else { this.buf.splice(this.bot, 1); this.buf.splice(this.top, 0, fresh); }
    }
  };
  T.lf = function () {
    this.wrap = false;
    if (this.y === this.bot) this.scroll(1, true);
    else if (this.y < this.rows - 1) this.y++;
  };
  T.ri = function () {
    this.wrap = false;
    if (this.y === this.top) this.scroll(1, false);
    else if (this.y > 0) this.y--;
  };

  // States: 0 text, 1 after ESC, 2 CSI, 3 OSC, 4 DCS/APC/PM, 5 ESC ( and kin, 6 ESC in 3/4.
  T.write = function (s) {
    for (var i = 0; i < s.length; i++) {
      var c = s.charAt(i), n = s.charCodeAt(i), st = this.st;
      if (st === 0) {
        if (n >= 32 && n !== 127 && (n < 128 || n > 159)) {
          if (n >= 0xd800 && n < 0xdc00 && i + 1 < s.length) c += s.charAt(++i);
          this.print(c);
        } else this.ctl(n);
      } else if (st === 1) this.esc(c, n);
      else if (st === 2) {
        if (n >= 64 && n < 127) { this.st = 0; this.csi(this.seq, c); }
        else if (n < 32) this.ctl(n);
        else if (this.seq.length < 64) this.seq += c;
      } else if (st === 5) {
        if (this.gset >= 0) this.g[this.gset] = c === "0";
        this.st = 0;
      } else if (st === 6) {
        if (c === "\\") this.st = 0;
        else { this.st = 1; i--; }
      } else if (n === 27) this.st = 6;
      else if ((n === 7 && st === 3) || n === 24 || n === 26 || n === 0x9c) this.st = 0;
    }
  };

  T.ctl = function (n) {
    if (n === 27) this.st = 1;
    else if (n === 24 || n === 26) this.st = 0;
    else if (n === 8) { if (this.x > 0) this.x--; this.wrap = false; }
    else if (n === 9) this.x = Math.min(this.cols - 1, (Math.floor(this.x / 8) + 1) * 8);
    else if (n >= 10 && n <= 12) this.lf();
    else if (n === 13) { this.x = 0; this.wrap = false; }
    else if (n === 14 || n === 15) this.gl = 15 - n; // SO: G1, SI: G0
  };

  T.esc = function (c, n) {
    if (n < 32) { this.ctl(n); return; }
    this.st = 0;
    if (c === "[") { this.st = 2; this.seq = ""; }
    else if (c === "]") this.st = 3;
    else if ("PX^_".indexOf(c) >= 0) this.st = 4;
    else if ("()*+-./#% ".indexOf(c) >= 0) { this.st = 5; this.gset = "()".indexOf(c); }
    else if (c === "7") this.save();
    else if (c === "8") this.restore();
    else if (c === "D") this.lf();
    else if (c === "E") { this.x = 0; this.lf(); }
    else if (c === "M") this.ri();
    else if (c === "c") this.reset();
  };

  T.print = function (c) {
    if (this.g[this.gl]) {
      var k = c.charCodeAt(0) - 0x60;
      if (c.length === 1 && k >= 0 && k < 31) c = GFX.charAt(k);
    }
    var r = this.buf[this.y];
    if (COMB.test(c)) { // joins the cell before the cursor
      var px = this.wrap ? this.x : this.x - 1;
      if (px >= 0) r[px] = { ch: r[px].ch + c, a: r[px].a };
      return;
    }
    if (this.wrap && this.autowrap) { this.x = 0; this.lf(); r = this.buf[this.y]; }
    this.wrap = false;
    if (this.ins) { r.splice(this.x, 0, blank(DEF)); r.pop(); }
    r[this.x] = { ch: c, a: this.attr };
    this.last = c;
    if (this.x === this.cols - 1) this.wrap = this.autowrap;
    else this.x++;
  };

  T.save = function () {
    this.saved[this.inAlt ? 1 : 0] = {
      x: this.x, y: this.y, attr: this.attr, wrap: this.wrap, g: this.g.slice(), gl: this.gl
    };
  };
  T.restore = function () {
    var s = this.saved[this.inAlt ? 1 : 0] ||
      { x: 0, y: 0, attr: DEF, wrap: false, g: [false, false], gl: 0 };
    this.x = Math.min(s.x, this.cols - 1); this.y = Math.min(s.y, this.rows - 1);
    this.attr = s.attr; this.wrap = s.wrap; this.g = s.g.slice(); this.gl = s.gl;
  };

  T.csi = function (seq, f) {
    var m = /^([<=>?]?)([\d;:]*)([ -\/]*)$/.exec(seq);
    if (!m) return;
    var p = m[2] ? m[2].split(";").map(function (v) {
      if (v.indexOf(":") < 0) return parseInt(v, 10) || 0;
      return v.split(":").map(function (w) { return parseInt(w, 10) || 0; });
    }) : [];
    var arg = function (i, d) { var v = p[i]; if (typeof v === "object") v = v[0]; return v || d; };
    var n = arg(0, 1), cols = this.cols, rows = this.rows, k, r, b;
    if (m[3]) { // only DECSTR (CSI ! p) among the intermediates
      if (m[3] === "!" && f === "p") {
        this.attr = DEF; this.top = 0; this.bot = rows - 1; this.cursorOn = true;
        this.autowrap = true; this.ins = false; this.g = [false, false]; this.gl = 0;
      }
      return;
    }
    if (m[1] === "?") {
      if (f === "h" || f === "l") for (k = 0; k < p.length; k++) this.mode(arg(k, 0), f === "h");
      return;
    }
    if (m[1]) return;
    if ("ABCDEFGHIJKLMPXZ@`adefr".indexOf(f) >= 0) this.wrap = false;
    switch (f) {
      case "F": this.x = 0; /* falls through */
      case "A": this.y = Math.max(this.y >= this.top ? this.top : 0, this.y - n); break;
      case "E": this.x = 0; /* falls through */
      case "B": case "e": this.y = Math.min(this.y <= this.bot ? this.bot : rows - 1, this.y + n); break;
      case "C": case "a": this.x = Math.min(cols - 1, this.x + n); break;
      case "D": this.x = Math.max(0, this.x - n); break;
      case "G": case "`": this.x = clamp(n - 1, cols); break;
      case "H": case "f": this.y = clamp(arg(0, 1) - 1, rows); this.x = clamp(arg(1, 1) - 1, cols); break;
      case "d": this.y = clamp(n - 1, rows); break;
      case "I": while (n-- > 0) this.ctl(9); break;
      case "Z": while (n-- > 0) this.x = Math.max(0, (Math.ceil(this.x / 8) - 1) * 8); break;
      case "J":
        k = arg(0, 0);
        if (k === 0) { this.fill(this.y, this.x, cols); for (r = this.y + 1; r < rows; r++) this.fill(r, 0, cols); }
        else if (k === 1) { for (r = 0; r < this.y; r++) this.fill(r, 0, cols); this.fill(this.y, 0, this.x + 1); }
        else if (k === 2) for (r = 0; r < rows; r++) this.fill(r, 0, cols);
        break; // 3 clears the scrollback, which this terminal has none of
      case "K":
        k = arg(0, 0);
        this.fill(this.y, k === 0 ? this.x : 0, k === 1 ? this.x + 1 : cols);
        break;
      case "L": case "M":
        if (this.y < this.top || this.y > this.bot) break;
        k = this.top; this.top = this.y; this.scroll(n, f === "M"); this.top = k; this.x = 0;
        break;
      case "@": case "P":
        r = this.buf[this.y]; b = this.bce(); n = Math.min(n, cols - this.x);
        for (k = 0; k < n; k++) {
          if (f === "@") { r.splice(this.x, 0, b); r.pop(); } else { r.splice(this.x, 1); r.push(b); }
        }
        break;
      case "X": this.fill(this.y, this.x, Math.min(cols, this.x + n)); break;
      case "S": this.scroll(n, true); break;
      case "T": if (p.length < 2) this.scroll(n, false); break;
      case "b": n = Math.min(n, cols * rows); while (n-- > 0) this.print(this.last); break;
      case "r":
        k = arg(0, 1) - 1; r = Math.min(arg(1, rows), rows) - 1;
        if (k < r) { this.top = k; this.bot = r; this.x = 0; this.y = 0; }
        break;
      case "m": this.sgr(p); break;
      case "s": if (!p.length) this.save(); break;
      case "u": this.restore(); break;
      case "h": case "l": for (k = 0; k < p.length; k++) if (arg(k, 0) === 4) this.ins = f === "h"; break;
    }
  };

  T.mode = function (m, on) {
    if (m === 25) this.cursorOn = on;
    else if (m === 7) this.autowrap = on;
    else if (m === 1048) { if (on) this.save(); else this.restore(); }
    else if (m === 47 || m === 1047 || m === 1049) {
      if (on === this.inAlt) return;
      if (on && m === 1049) this.save();
      if (!on && m === 1047) this.alt = this.grid(blank(DEF));
      if (on && m === 1049) this.alt = this.grid(this.bce());
      this.inAlt = on; this.buf = on ? this.alt : this.main;
      if (!on && m === 1049) this.restore();
    }
  };

  T.sgr = function (p) {
    var a = this.attr;
    if (!p.length) p = [0];
    for (var i = 0; i < p.length; i++) {
      var v = p[i], sub = typeof v === "object" ? v : null, c = -1;
      if (sub) v = sub[0];
      if (v === 38 || v === 48 || v === 58) { // 58: underline colour, skipped
        var q = sub ? sub.slice(1) : p.slice(i + 1);
        if (q[0] === 5) { c = colour256(q[1] & 255); if (!sub) i += 2; }
        else if (q[0] === 2) {
          if (sub && q.length > 4) q = q.slice(1); // 38:2:<colour space>:r:g:b
          c = nearest(q[1] & 255, q[2] & 255, q[3] & 255);
          if (!sub) i += 4;
        }
        if (c >= 0 && v !== 58) a = v === 38 ? fg(a, c) : bg(a, c);
      } else if (v === 0) a = DEF;
      else if (v === 1) a |= BOLD;
      else if (v === 2) a |= DIM;
      else if (v === 3) a |= ITAL;
      else if (v === 4) a = sub && sub[1] === 0 ? a & ~UND : a | UND;
      else if (v === 7) a |= REV;
      else if (v === 21) a |= UND;
      else if (v === 22) a &= ~(BOLD | DIM);
      else if (v === 23) a &= ~ITAL;
      else if (v === 24) a &= ~UND;
      else if (v === 27) a &= ~REV;
      else if (v >= 30 && v <= 37) a = fg(a, v - 30);
      else if (v === 39) a = fg(a, 16);
      else if (v >= 40 && v <= 47) a = bg(a, v - 40);
      else if (v === 49) a = bg(a, 16);
      else if (v >= 90 && v <= 97) a = fg(a, v - 82);
      else if (v >= 100 && v <= 107) a = bg(a, v - 92);
    }
    this.attr = a;
  };

  T.resize = function (c, r) {
    if (!(c > 0 && r > 0)) return;
    c = Math.min(c, 1000); r = Math.min(r, 500);
    var self = this;
    [this.main, this.alt].forEach(function (g) {
      while (g.length > r) { // keeps the cursor's line, dropping lines above it if need be
        if (g === self.buf && self.y >= g.length - 1 && self.y > 0) { g.shift(); self.y--; } else g.pop();
      }
      while (g.length < r) g.push(line(c, blank(DEF)));
      g.forEach(function (row) {
        if (row.length > c) row.length = c;
        while (row.length < c) row.push(blank(DEF));
      });
    });
    this.cols = c; this.rows = r; this.top = 0; this.bot = r - 1;
    this.x = Math.min(this.x, c - 1); this.y = Math.min(this.y, r - 1); this.wrap = false;
  };

  T.text = function () {
    return this.buf.map(function (row) {
      return row.map(function (cell) { return cell.ch; }).join("").replace(/ +$/, "");
    }).join("\n");
  };

  // The screen as HTML: one line per row, runs of equal attributes in spans.
  T.html = function () {
    var out = [];
    for (var y = 0; y < this.rows; y++) {
      var row = this.buf[y], s = "", run = "", prev = null;
      for (var x = 0; x < this.cols; x++) {
        var cell = row[x], ch = cell.ch;
        var k = classes(cell.a);
        if (this.cursorOn && y === this.y && x === this.x) k += k ? " t-cur" : "t-cur";
        if (k !== prev) {
          if (prev !== null) s += "<span class=\"" + prev + "\">" + run + "</span>";
          run = ""; prev = k;
        }
        run += ch.length === 1 ? HTML[ch] || ch : ch.replace(/[&<>]/g, function (e) { return HTML[e]; });
      }
      out.push(s + "<span class=\"" + prev + "\">" + run + "</span>");
    }
    return out.join("\n");
  };

  function cloneTerm(src, dst) {
    for (var k in src) if (Object.prototype.hasOwnProperty.call(src, k)) dst[k] = src[k];
    dst.main = src.main.map(copyRow); dst.alt = src.alt.map(copyRow);
    dst.buf = dst.inAlt ? dst.alt : dst.main;
    dst.g = src.g.slice(); dst.saved = src.saved.slice();
    return dst;
  }
  T.snapshot = function () { return cloneTerm(this, {}); };
  T.load = function (s) { cloneTerm(s, this); };

  // asciicast v2: the header line, then [time, code, data] lines; keeps "o" and "r" frames.
  function parseCast(text) {
    var lines = String(text).split("\n"), header = null, frames = [], t = 0;
    try { header = JSON.parse(lines[0]); } catch (e) { /* below */ }
    if (!header || header.version !== 2) throw new Error("This is not an asciicast v2 recording.");
    for (var i = 1; i < lines.length; i++) {
      if (!lines[i].trim()) continue;
      var f;
      try { f = JSON.parse(lines[i]); } catch (e) { continue; }
      if (!Array.isArray(f) || typeof f[0] !== "number" || typeof f[2] !== "string") continue;
      if (f[1] !== "o" && f[1] !== "r") continue;
      t = Math.max(t, f[0]);
      frames.push({ t: t, code: f[1], data: f[2] });
    }
    return {
      header: header, frames: frames,
      cols: header.width > 0 ? header.width : 80, rows: header.height > 0 ? header.height : 24,
      duration: Math.max(t, +header.duration || 0),
      truncated: /\(truncated\)\s*$/.test(header.title || "")
    };
  }

  function fmt(s) {
    s = Math.max(0, s);
    if (s < 60) return s.toFixed(1) + "s";
    var m = Math.floor(s / 60), h = Math.floor(m / 60);
    return (h ? h + "h " + (m % 60) + "m " : m + "m ") + Math.floor(s % 60) + "s";
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }

  function start() {
    var box = document.getElementById("player");
    if (!box) return;
    var screen = el("pre", { "class": "screen", id: "screen" });
    var bar = el("div", { "class": "controls" });
    var playBtn = el("button", { type: "button", id: "play-pause" }, "Play");
    var stepBtn = el("button", { type: "button", id: "step", title: "Next frame (.)" }, "Step");
    var seek = el("input", { type: "range", id: "seek", min: "0", max: "0", step: "0.01", value: "0", "aria-label": "Position" });
    var clock = el("span", { id: "clock" }, "0.0s / 0.0s");
    var speedSel = el("select", { id: "speed", "aria-label": "Speed" });
    var status = el("span", { id: "player-status", role: "status" }, "Loading…");
    [0.5, 1, 2, 4, 8].forEach(function (v) { speedSel.appendChild(el("option", { value: String(v) }, v + "×")); });
    speedSel.value = "1";
    [playBtn, stepBtn, seek, clock, speedSel, status].forEach(function (e) { bar.appendChild(e); });
    box.appendChild(screen);
    box.appendChild(bar);
    if (!box.hasAttribute("tabindex")) box.setAttribute("tabindex", "0");
    var controls = [playBtn, stepBtn, seek, speedSel];
    controls.forEach(function (e) { e.disabled = true; });

    // R: real offsets, C: offsets with idle gaps capped at 2 s; entry i+1 is frame i.
    var cast = null, term = null, frames = [], R = [0], C = [0], snaps = [], idx = 0;
    var pos = 0, clockC = 0, playing = false, speed = 1, last = 0, raf = 0, drawing = false, pending = null;

    function setState(s) { box.setAttribute("data-state", s); }

    function apply(i) {
      var f = frames[i], m;
      if (f.code === "o") term.write(f.data);
      else if ((m = /^\s*(\d+)\s*x\s*(\d+)/.exec(f.data))) term.resize(+m[1], +m[2]);
      idx = i + 1;
      if (idx % 1000 === 0 && !snaps[idx / 1000]) snaps[idx / 1000] = term.snapshot();
    }

    function find(a, v) { // the last k with a[k] <= v
      var lo = 0, hi = a.length - 1;
      while (lo < hi) { var mid = (lo + hi + 1) >> 1; if (a[mid] <= v) lo = mid; else hi = mid - 1; }
      return lo;
    }
    function toC(t) { var k = find(R, t); return k + 1 < R.length ? C[k] + Math.min(t - R[k], C[k + 1] - C[k]) : C[k]; }
    function toR(c) { var k = find(C, c); return k + 1 < C.length ? Math.min(R[k] + c - C[k], R[k + 1]) : R[k]; }

    function render() {
      drawing = false;
      screen.innerHTML = term.html();
      seek.value = String(pos);
      clock.textContent = fmt(pos) + " / " + fmt(cast.duration);
      box.setAttribute("data-time", pos.toFixed(2));
    }
    function draw() { if (!drawing) { drawing = true; requestAnimationFrame(render); } }

    // Applies the frames up to t: from the last snapshot before t when going back.
    function goTo(t) {
      t = Math.max(0, Math.min(cast.duration, t || 0));
      var n = Math.min(find(R, t), frames.length);
      if (n < idx) {
        var k = Math.floor(n / 1000);
        while (k > 0 && !snaps[k]) k--;
        if (k) term.load(snaps[k]); else term = new Term(cast.cols, cast.rows);
        idx = k * 1000;
      }
      while (idx < n) apply(idx);
      pos = t; clockC = toC(t);
    }

    function tick(now) {
      if (!playing) return;
      clockC += Math.max(0, Math.min(now - last, 1000)) / 1000 * speed;
      last = now;
      while (idx < frames.length && C[idx + 1] <= clockC) apply(idx);
      if (clockC >= C[C.length - 1]) {
        goTo(cast.duration);
        playing = false; playBtn.textContent = "Play"; setState("ended");
      } else {
        pos = toR(clockC);
        raf = requestAnimationFrame(tick);
      }
      render();
    }

    function play() {
      if (!cast || playing) return;
      if (pos >= cast.duration) goTo(0);
      playing = true; playBtn.textContent = "Pause"; setState("playing");
      last = performance.now();
      cancelAnimationFrame(raf);
      raf = requestAnimationFrame(tick);
    }
    function pause() {
      if (!cast) return;
      playing = false; cancelAnimationFrame(raf);
      playBtn.textContent = "Play"; setState("paused");
    }
    function pauseAt(t) {
      if (!cast) { pending = t; return; }
      pause(); goTo(t); render();
    }
    function seekBy(d) {
      if (!cast) return;
      goTo(pos + d);
      if (!playing) setState("paused");
      draw();
    }
    function step() {
      if (!cast) return;
      pause();
      if (idx < frames.length) goTo(frames[idx].t);
      render();
    }

    playBtn.addEventListener("click", function () { if (playing) pause(); else play(); });
    stepBtn.addEventListener("click", step);
    seek.addEventListener("input", function () { seekBy(parseFloat(seek.value) - pos); });
    speedSel.addEventListener("change", function () { speed = parseFloat(speedSel.value) || 1; });
    box.addEventListener("keydown", function (e) {
      var tag = e.target.tagName, k = e.key;
      if (e.ctrlKey || e.altKey || e.metaKey) return;
      if (k === " " && (tag === "BUTTON" || tag === "SELECT")) return;
      if (k === " ") { if (playing) pause(); else play(); }
      else if (k === ".") step();
      else if ((k === "ArrowLeft" || k === "ArrowRight") && tag !== "SELECT") seekBy(k === "ArrowLeft" ? -5 : 5);
      else return;
      e.preventDefault();
    });

    // Timeline items with an offset show the recording at their moment.
    var items = document.querySelectorAll("li[data-offset]");
    Array.prototype.forEach.call(items, function (li) {
      var off = parseFloat(li.getAttribute("data-offset"));
      if (isNaN(off)) return;
      var go = function () {
        pauseAt(off);
        if (box.scrollIntoView) box.scrollIntoView({ block: "nearest", behavior: "smooth" });
      };
      li.classList.add("seekable");
      li.tabIndex = 0;
      li.title = "Show the recording at " + fmt(off);
      li.addEventListener("click", go);
      li.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); go(); } });
    });

    window.sbPlayer = {
      seek: function (t) { pauseAt(+t); },
      play: play,
      pause: pause,
      text: function () { return term ? term.text() : ""; }
    };

    fetch(box.getAttribute("data-cast"), { credentials: "same-origin" }).then(function (res) {
      return res.text().then(function (body) {
        if (res.ok) return parseCast(body);
        var msg = "";
        try { msg = JSON.parse(body).error || ""; } catch (e) { /* not JSON */ }
        if (res.status === 403) msg = "This recording needs the recordings scope" + (msg ? " (" + msg + ")" : "");
        throw new Error("HTTP " + res.status + ": " + (msg || res.statusText || "cannot load the recording"));
      });
    }).then(function (c) {
      cast = c; frames = c.frames;
      term = new Term(c.cols, c.rows);
      frames.forEach(function (f, i) {
        R.push(f.t);
        C.push(C[i] + Math.min(f.t - R[i], 2));
      });
      R.push(c.duration);
      C.push(C[C.length - 1] + Math.min(c.duration - R[R.length - 2], 2));
      seek.max = String(c.duration);
      controls.forEach(function (e) { e.disabled = false; });
      status.textContent = c.truncated ? "This recording is truncated: it ends before the session did." : "";
      goTo(0); render();
      setState("ready");
      if (pending !== null) pauseAt(pending);
    }).catch(function (e) {
      setState("error");
      status.textContent = String((e && e.message) || e);
    });
  }

  if (typeof module !== "undefined" && module.exports) module.exports = { Term: Term, parseCast: parseCast };
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }
})();
