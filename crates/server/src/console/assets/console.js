// Session-Buddy console: local times, running clocks, the live view's stream. No framework.
"use strict";
(function () {
  var loadedAt = Date.now();
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };

  function localText(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function utcText(d) {
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") + " (UTC)";
  }

  // Every <time datetime> in the viewer's zone, UTC on hover.
  function localise(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i], d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      t.textContent = localText(d);
      t.title = utcText(d);
    }
  }

  function hms(secs) {
    secs = Math.max(0, secs);
    if (secs < 9.95) return secs.toFixed(1) + "s";
    secs = Math.round(secs);
    var h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
    if (h > 0) return h + "h " + m + "m " + s + "s";
    if (m > 0) return m + "m " + s + "s";
    return s + "s";
  }

  function tick(table) {
    var rows = table.tBodies[0].rows, now = Date.now();
    for (var i = 0; i < rows.length; i++) {
      var t = rows[i].querySelector("td.started time");
      var cell = rows[i].querySelector("td.running");
      if (!t || !cell || rows[i].classList.contains("abandoned")) continue;
      cell.textContent = hms((now - new Date(t.getAttribute("datetime")).getTime()) / 1000);
    }
  }

  function cell(row, cls, label) {
    var td = row.querySelector("td." + cls);
    if (!td) {
      td = document.createElement("td");
      td.className = cls;
      td.setAttribute("data-label", label);
      row.appendChild(td);
    }
    return td;
  }

  function lastCommand(frame) {
    var s = frame.session || {};
    if (typeof s.last_command === "string") return s.last_command;
    var events = frame.events || [];
    for (var i = events.length - 1; i >= 0; i--) {
      if (events[i].event_type === "command" && events[i].command) return events[i].command;
    }
    return null;
  }

  function upsert(table, frame) {
    var s = frame.session, body = table.tBodies[0];
    var row = null, rows = body.rows;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-session") === s.session_id) { row = rows[i]; break; }
    }
    if (s.status === "ended") {
      if (row) row.parentNode.removeChild(row);
      return;
    }
    if (!row) {
      row = document.createElement("tr");
      row.setAttribute("data-session", s.session_id);
      var first = cell(row, "session", "Session"), a = document.createElement("a");
      a.href = "/sessions/" + encodeURIComponent(s.session_id);
      a.textContent = s.session_id;
      first.appendChild(a);
      cell(row, "host", "Host").textContent = s.hostname || "";
      cell(row, "component", "Component").textContent = s.component || "";
      cell(row, "user", "User").textContent = s.username || "";
      var t = document.createElement("time");
      t.setAttribute("datetime", s.started_at);
      cell(row, "started", "Started").appendChild(t);
      cell(row, "running", "Running");
      cell(row, "commands", "Commands");
      cell(row, "last-command", "Last command");
      row.classList.add("fresh");
      body.insertBefore(row, body.firstChild);
      localise(row);
      // The newest `data-limit` stay, as on the server's page.
      var limit = parseInt(table.getAttribute("data-limit") || "200", 10);
      while (body.rows.length > limit) body.removeChild(body.rows[body.rows.length - 1]);
    }
    row.querySelector("td.commands").textContent = String(s.command_count || 0);
    var last = lastCommand(frame);
    if (last !== null) row.querySelector("td.last-command").textContent = last;
    if (s.status === "abandoned") row.classList.add("abandoned");
    else row.classList.remove("abandoned");
  }

  function emptyState(table) {
    var empty = document.getElementById("live-empty");
    if (empty) empty.hidden = table.tBodies[0].rows.length > 0;
    var summary = document.getElementById("live-summary");
    if (summary) summary.textContent = table.tBodies[0].rows.length + " active; updates as it happens.";
  }

  function follow(table) {
    if (typeof EventSource === "undefined") return;
    var state = document.getElementById("live-state");
    var position = table.getAttribute("data-position") || "";
    var url = "/v1/stream" + (position ? "?after=" + encodeURIComponent(position) : "");
    var source = new EventSource(url);
    var say = function (text) { if (state) state.textContent = text; };
    // What happened while the connection was down is replayed from the events, but an
    // abandonment by the reaper is no event: after a reconnection, reload the page (at most
    // once per 10 s) so the rows are the store's.
    var dropped = false;
    var reload = function () {
      source.close();
      setTimeout(function () { window.location.reload(); }, Math.max(0, loadedAt + 10000 - Date.now()));
    };
    source.onopen = function () {
      if (dropped) { say("Live: reconnected; refreshing…"); reload(); return; }
      say("Live: connected.");
    };
    source.onerror = function () { dropped = true; say("Live: reconnecting…"); };
    source.addEventListener("session", function (e) {
      var frame;
      try { frame = JSON.parse(e.data); } catch (err) { return; }
      if (!frame || !frame.session) return;
      if (frame.position !== undefined) table.setAttribute("data-position", String(frame.position));
      upsert(table, frame);
      tick(table);
      emptyState(table);
    });
    // A resync means changes were missed: reload, but not more than once per 10 s (under a
    // flood of changes the server says `busy` about once a second).
    source.addEventListener("resync", function (e) {
      var busy = false;
      try { busy = JSON.parse(e.data).reason === "busy"; } catch (err) { /* reload anyway */ }
      say(busy ? "Live: more changes than a live view shows; refreshing every 10 s." : "Live: refreshing…");
      reload();
    });
  }

  function start() {
    localise(document);
    var live = document.getElementById("live");
    if (live) {
      tick(live);
      setInterval(function () { tick(live); }, 1000);
      follow(live);
    }
    var days = document.getElementById("days");
    if (days && days.form) {
      days.addEventListener("change", function () { days.form.submit(); });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
