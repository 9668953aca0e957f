// The playground page of `modelspec serve` (and, read-only, of `modelspec serve --export`).
//
// window.MODELSPEC says where the page starts: {static: false, file, start, examples} for the live page, which
// asks the server (POST /api/check) about the text as it is typed; {static: true, name, source, analysis,
// explained, examples} for an exported page, which shows what was worked out when it was written. Everything
// the page draws comes from those answers: the editor (window.NnspecEditor, CodeMirror) underlines the
// diagnostics, the code panel shows the printed PyTorch, the summary's rows point at the spec's lines, and
// Viz.js draws the diagram's DOT text. Text from a spec only ever goes into the page as text, never as HTML.
(function () {
  "use strict";

  var S = window.MODELSPEC;
  var DEBOUNCE_MS = 250;
  var el = function (id) { return document.getElementById(id); };
  var editor, codeView, vizReady = null, drawnDot = null;
  var timer = null, version = null, lastCode = null, shown = null;

  function make(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function api(method, url, body) {
    var init = {method: method, headers: {}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      return r.json().catch(function () { return {error: r.status + " " + r.statusText}; }).then(function (data) {
        if (!r.ok) throw new Error(data.error || (r.status + " " + r.statusText));
        return data;
      });
    });
  }

  function setStatus(text, cls) {
    var s = el("status");
    s.textContent = text;
    s.className = cls || "";
  }

  // ---------------------------------------------------------------- checking as you type
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(check, DEBOUNCE_MS);
  }

  // One check at a time: text typed while one is out is sent when it is back, as one more check of the latest
  // text, so a slow spec never piles requests up on the server.
  var inFlight = null, again = false;

  function check() {
    if (inFlight) {
      again = true;
      return inFlight;
    }
    var body = {source: NnspecEditor.getText(editor), explain: el("explain").checked};
    var model = chosenModel();
    if (model) body.model = model;
    setStatus("checking…", "busy");
    inFlight = api("POST", "api/check", body).catch(function (err) {
      if (!model || !/^no model /.test(err.message)) throw err;
      delete body.model;  // renamed or removed as it was typed: show the first model instead
      return api("POST", "api/check", body);
    }).then(function (got) {
      if (!again) show(got);  // else the text has changed since: its answer comes next
    }).catch(function (err) {
      if (!again) setStatus(String(err.message || err), "error");
    }).then(function () {
      inFlight = null;
      if (again) {
        again = false;
        return check();
      }
    });
    return inFlight;
  }

  // ---------------------------------------------------------------- showing an answer
  function show(got) {
    shown = got;
    var diags = got.diagnostics || [];
    NnspecEditor.setDiagnostics(editor, diags.map(atTheImport));
    showProblems(diags, got.truncated);
    showModels(got.models || [], got.model);
    var library = !(got.models && got.models.length) && !diags.some(function (d) { return d.severity === "error"; });
    if (library) {  // blocks and consts alone: nothing to print, sum up or draw until a model uses them
      lastCode = drawnDot = null;
      NnspecEditor.setText(codeView, "# a library of blocks and consts: no model to print");
      el("middle").classList.remove("stale");
      el("drawing").classList.remove("stale");
      el("diagram").textContent = "No diagram: the spec has no model.";
      el("summary").textContent = "";
      el("summary").appendChild(make("p", "No summary: the spec has no model.", "note"));
    } else {
      showCode(got.code);
      showSummary(got.summary, got.table);
      showDiagram(got.graph);
    }
    var errors = diags.filter(function (d) { return d.severity === "error"; }).length;
    var warnings = diags.length - errors;
    if (errors) setStatus(count(errors, "error") + (warnings ? ", " + count(warnings, "warning") : ""), "error");
    else if (warnings) setStatus("ok, " + count(warnings, "warning"), "warning");
    else setStatus(got.models && got.models.length ? "ok" : "ok (no model: a library of blocks)", "ok");
    el("run").hidden = S.static || errors > 0 || !got.model;
  }

  function chosenModel() {
    var select = el("model");
    return select.hidden ? null : select.value || null;
  }

  // A diagnostic of an imported file is shown at the import that brings it in, saying where it is.
  function atTheImport(d) {
    if (!d.path || !d.at) return d;
    return {line: d.at.line, column: d.at.column, end_line: d.at.end_line, end_column: d.at.end_column,
            severity: d.severity, code: d.code, name: d.name, hint: d.hint, path: null,
            message: d.path + ":" + d.line + ":" + d.column + ": " + d.message};
  }

  function count(n, noun) { return n + " " + noun + (n === 1 ? "" : "s"); }

  function showProblems(diags, truncated) {
    var list = el("problems");
    list.textContent = "";
    diags.forEach(function (d) {
      var item = make("li", null, d.severity);
      var where = d.path ? d.path + ":" + d.line + ":" + d.column : d.line + ":" + d.column;
      item.appendChild(make("span", where, "where"));
      item.appendChild(make("span", d.code, "code"));
      item.appendChild(make("span", d.message, "message"));
      if (d.hint) item.appendChild(make("div", "hint: " + d.hint, "hint"));
      if (!d.path) item.onclick = function () { NnspecEditor.highlightLine(editor, d.line); };
      list.appendChild(item);
    });
    if (truncated) list.appendChild(make("li", "… it stops here: there may be more", "more"));
  }

  function showModels(names, chosen) {
    var select = el("model");
    var same = select.options.length === names.length &&
      names.every(function (n, i) { return select.options[i].value === n; });
    if (!same) {
      select.textContent = "";
      names.forEach(function (n) { select.appendChild(make("option", n)).value = n; });
    }
    if (chosen) select.value = chosen;
    select.hidden = names.length < 2;
  }

  function showCode(code) {
    var box = el("middle");
    if (code === null || code === undefined) {
      // the code of the last spec that had some, dimmed and said to be so, until it is fixed
      if (lastCode === null) NnspecEditor.setText(codeView, "# no code: the spec has an error");
      else box.classList.add("stale");
      return;
    }
    box.classList.remove("stale");
    if (code !== lastCode) NnspecEditor.setText(codeView, code);
    lastCode = code;
  }

  // The columns of `modelspec summary`'s table, whose cells the answer carries as the CLI prints them: the
  // class of each cell's <td> (numbers right-aligned, a shape allowed to wrap).
  var CELL_CLASSES = ["layer", "shape", "num", "", "", "num"];

  function showSummary(summary, table) {
    var box = el("summary");
    box.textContent = "";
    if (!summary) {
      box.appendChild(make("p", "No summary: the spec fails before its first module.", "note"));
      return;
    }
    var grid = make("table");
    var head = grid.appendChild(make("thead")).appendChild(make("tr"));
    table.header.forEach(function (h) { head.appendChild(make("th", h)); });
    var body = grid.appendChild(make("tbody"));
    summary.rows.forEach(function (r, n) {
      var tr = make("tr", null, r.failed ? "failed" : "");
      if (r.line) tr.dataset.line = r.line;
      tr.dataset.path = r.path;
      table.rows[n].forEach(function (cell, i) {
        var td = make("td", i === 0 ? cell.trim() : cell, CELL_CLASSES[i]);
        if (i === 0) td.style.paddingLeft = (0.3 + 1.2 * r.depth) + "em";
        tr.appendChild(td);
      });
      if (r.line) {
        tr.onclick = function () {
          Array.prototype.forEach.call(body.querySelectorAll("tr.selected"), function (t) {
            t.classList.remove("selected");
          });
          tr.classList.add("selected");
          NnspecEditor.highlightLine(editor, r.line);
        };
      }
      body.appendChild(tr);
    });
    box.appendChild(grid);
    var totals = "Total params: " + summary.total_params.toLocaleString("en") +
      (summary.total_mult_adds === null ? "" : " · mult-adds: " + summary.total_mult_adds.toLocaleString("en")) +
      (summary.symbols && Object.keys(summary.symbols).length ? " · at " + Object.keys(summary.symbols).map(
        function (k) { return k + "=" + summary.symbols[k]; }).join(", ") : "");
    box.appendChild(make("p", totals, "totals"));
    if (summary.error) {
      box.appendChild(make("p", "It stops at " + summary.error.line + ":" + summary.error.column + ": " +
                           summary.error.message, "stopped"));
    }
  }

  function showDiagram(graph) {
    var box = el("diagram");
    if (!graph) {
      if (drawnDot === null) box.textContent = "No diagram: the spec has an error.";
      else el("drawing").classList.add("stale");
      return;
    }
    el("drawing").classList.remove("stale");
    if (graph.dot === drawnDot) return;
    drawnDot = graph.dot;
    if (vizReady === null) vizReady = Viz.instance();
    vizReady.then(function (viz) {
      if (graph.dot !== drawnDot) return;  // a newer one is on its way
      box.textContent = "";
      box.appendChild(viz.renderSVGElement(graph.dot));
    }).catch(function (err) {
      box.textContent = "The diagram could not be drawn: " + err;
    });
  }

  function toggleFit() {
    var box = el("diagram");
    box.classList.toggle("fit");
    el("fit").textContent = box.classList.contains("fit") ? "actual size" : "fit the width";
  }

  // ---------------------------------------------------------------- running, saving, choosing
  function runOnce() {
    var out = el("ran");
    out.hidden = false;
    out.textContent = "running one forward pass…";
    out.classList.remove("stale");
    var body = {source: NnspecEditor.getText(editor)};
    var model = chosenModel();
    if (model) body.model = model;
    api("POST", "api/run", body).then(function (got) {
      if (!got.ok) {
        out.textContent = got.diagnostics.map(function (d) { return d.line + ":" + d.column + " " + d.message; })
          .join("\n");
        return;
      }
      var lines = got.inputs.map(function (t) { return "input " + t.name + ": [" + t.shape.join(", ") + "] " + t.dtype; });
      got.outputs.forEach(function (t, i) { lines.push("output " + i + ": [" + t.shape.join(", ") + "] " + t.dtype); });
      lines.push(got.params.toLocaleString("en") + " parameters · build " + got.build_ms.toFixed(1) + " ms · forward " +
                 got.forward_ms.toFixed(2) + " ms on " + got.device + ", batch " + got.batch);
      out.textContent = lines.join("\n");
    }).catch(function (err) { out.textContent = String(err.message || err); });
  }

  function save() {
    var text = NnspecEditor.getText(editor);
    if (text && !text.endsWith("\n")) text += "\n";  // a text file ends with a newline
    api("PUT", "api/file", {source: text, version: version}).then(function (got) {
      version = got.version;
      saved = text;
      edited();
      setStatus("saved " + S.file, "ok");
    }).catch(function (err) { setStatus(String(err.message || err), "error"); });
  }

  // Whether the text differs from the file as last read or saved: the file's name says so, and leaving the
  // page asks first.
  var saved = null;

  function unsaved() {
    return S.file && saved !== null && NnspecEditor.getText(editor).replace(/\n?$/, "\n") !== saved.replace(/\n?$/, "\n");
  }

  function edited() {
    if (S.file) el("file").textContent = S.file + (unsaved() ? " (not saved)" : "");
    el("ran").classList.add("stale");  // the run was of the text before
  }

  function openExample(name) {
    return api("GET", "api/examples/" + name.split("/").map(encodeURIComponent).join("/")).then(function (got) {
      el("model").hidden = true;
      el("ran").hidden = true;  // it was another spec's
      NnspecEditor.setText(editor, got.source);
      if (location.hash.slice(1) !== name) history.replaceState(null, "", "#" + name);
      return check();
    });
  }

  function menu() {
    var nav = el("specs");
    if (S.static) {
      var select = make("select");
      select.setAttribute("aria-label", "spec");
      S.examples.forEach(function (e) {
        var o = select.appendChild(make("option", e.name));
        o.value = e.href;
        o.selected = e.name === S.name;
      });
      select.onchange = function () { location.href = "./" + select.value; };
      nav.appendChild(select);
      return;
    }
    if (S.file) return;
    var pick = make("select");
    pick.id = "example";
    pick.setAttribute("aria-label", "example spec");
    S.examples.forEach(function (e) { pick.appendChild(make("option", e.name)).value = e.name; });
    pick.onchange = function () { openExample(pick.value); };
    nav.appendChild(pick);
  }

  // ---------------------------------------------------------------- start
  function start() {
    menu();
    codeView = NnspecEditor.create(el("code"), {doc: "", readOnly: true, language: "python"});
    if (S.static) {
      editor = NnspecEditor.create(el("editor"), {doc: S.source, readOnly: true});
      el("file").textContent = "read-only";
      el("fit").onclick = toggleFit;
      el("explain").onchange = function () {
        showCode(el("explain").checked ? S.explained : S.analysis.code);
      };
      show(S.analysis);
      return;
    }
    editor = NnspecEditor.create(el("editor"), {doc: "", onChange: function () { edited(); schedule(); }});
    el("fit").onclick = toggleFit;
    el("explain").onchange = check;
    el("model").onchange = check;
    el("run").onclick = runOnce;
    if (S.file) {
      el("file").textContent = S.file;
      el("save").hidden = false;
      el("save").onclick = save;
      document.addEventListener("keydown", function (e) {
        if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(); }
      });
      window.addEventListener("beforeunload", function (e) {
        if (unsaved()) e.preventDefault();
      });
      el("save").disabled = true;  // until the file is read: saving what was never loaded would overwrite it
      api("GET", "api/file").then(function (got) {
        version = got.version;
        saved = got.source;
        NnspecEditor.setText(editor, got.source);
        el("save").disabled = false;
        return check();
      }).catch(function (err) { setStatus(String(err.message || err), "error"); });
      return;
    }
    var wanted = decodeURIComponent(location.hash.slice(1));
    var name = S.examples.some(function (e) { return e.name === wanted; }) ? wanted : S.start;
    el("example").value = name;
    openExample(name).catch(function (err) { setStatus(String(err.message || err), "error"); });
  }

  window.modelspecPlayground = {check: check, shown: function () { return shown; }};
  start();
})();
