// The lab's panels (paradigms/lab/panels.py answers them): a picture drawn, uploaded or picked, sent with the
// panel's settings to run A and, when one is picked, run B; their answers side by side. Every setting is kept in the
// page's address, so a link reopens the same view. Written for this project; it loads nothing from elsewhere.
"use strict";

(() => {
  const form = document.getElementById("panel");
  if (!form) return;
  const panel = form.dataset.panel;
  let picture = null;          // the bytes of a drawing or an upload (a Blob), else the test index is used
  let asked = 0;               // answers to older questions are dropped
  let timer = null;            // a pause in typing or sliding before asking
  const input = form.dataset.input;             // "image", "text" or "none"
  const go = document.getElementById("go");      // a panel too slow to ask at every change asks on this button
  const streams = form.dataset.streams;          // "progress": the answer comes after a stream of progress
  if (input === "text") { textPanel(); return; }
  const canvas = document.getElementById("draw"), g = canvas && canvas.getContext("2d");

  function blank() { if (g) { g.fillStyle = "#000"; g.fillRect(0, 0, canvas.width, canvas.height); } }
  blank();
  if (go) go.onclick = () => ask(true);
  if (canvas) drawing();
  function drawing() {

  // drawing: white strokes on black, as the digits are
  let last = null;
  const at = e => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * canvas.width / r.width,
                                                                       (e.clientY - r.top) * canvas.height / r.height]; };
  canvas.addEventListener("pointerdown", e => { last = at(e); canvas.setPointerCapture(e.pointerId); stroke(e); });
  canvas.addEventListener("pointermove", e => { if (last) stroke(e); });
  canvas.addEventListener("pointerup", () => { last = null; canvas.toBlob(b => { picture = b; setTest(""); ask(); }, "image/png"); });
  function stroke(e) {
    const p = at(e);
    g.strokeStyle = "#fff"; g.lineWidth = canvas.width / 9; g.lineCap = g.lineJoin = "round";
    g.beginPath(); g.moveTo(...last); g.lineTo(...p); g.stroke();
    last = p;
  }
  document.getElementById("clear").onclick = () => { blank(); picture = null; clearAnswers(); };
  document.getElementById("upload").onchange = e => {
    const file = e.target.files[0];
    if (!file) return;
    picture = file; setTest("");
    const img = new Image();
    img.onload = () => { blank(); g.drawImage(img, 0, 0, canvas.width, canvas.height); URL.revokeObjectURL(img.src); };
    img.src = URL.createObjectURL(file);
    ask();
  };
  }
  function setTest(v) { const t = form.elements.test; if (t) t.value = v; }

  // settings: in the address, and each change asks again (the slider after a pause)
  form.addEventListener("input", e => {
    if (e.target.name === "test") picture = null;
    if (e.target.type === "file") return;
    clearTimeout(timer); timer = setTimeout(ask, e.target.type === "range" ? 120 : 300);
  });
  form.addEventListener("change", e => { if (e.target.tagName === "SELECT" || e.target.type === "checkbox") ask(); });

  function settings() {            // every named setting of the form, as the address keeps it
    const q = new URLSearchParams();
    for (const el of form.elements) {
      if (!el.name || el.type === "file" || (el.type === "checkbox" && !el.checked)) continue;
      if (el.value !== "") q.set(el.name, el.value);
    }
    return q;
  }
  function keepInAddress() {
    const q = settings();
    history.replaceState(null, "", `${location.pathname}?${q}`);
    for (const out of document.querySelectorAll("output[id$='-shown']")) {
      const slider = form.elements[out.id.replace("-shown", "")];
      if (slider) out.textContent = (+slider.value).toFixed(slider.name === "eps" ? 3 : Math.max(2, ((slider.step || "").split(".")[1] || "").length));
    }
  }
  function clearErrors() {
    document.querySelectorAll(".field-error").forEach(e => e.textContent = "");
    document.getElementById("panel-error").textContent = "";
  }
  function sides() { return [["A", form.elements.run.value], ["B", form.elements.b.value]]; }
  async function post(run, params) {
    const q = new URLSearchParams(params); q.set("run", run); q.delete("b");
    const r = await fetch(`/api/panel/${panel}?${q}`, {method: "POST"});
    const data = await r.json().catch(() => ({error: `the lab answered ${r.status}`}));
    return [r.ok, data];
  }

  // -- text panels: GPT (a next-token table, then the text streamed) and BERT (the fills of each [MASK]) -------------
  function textPanel() {
    let streams = [];
    form.addEventListener("input", e => { keepInAddress(); clearTimeout(timer); timer = setTimeout(table, 300); });
    form.addEventListener("change", e => { if (e.target.tagName === "SELECT") table(); });
    const go = document.getElementById("go");
    if (go) go.onclick = write;
    keepInAddress();
    table();

    async function table() {
      keepInAddress(); clearErrors();
      const mine = ++asked, q = settings();
      if (panel === "gpt") q.set("tokens", "0");
      await Promise.all(sides().map(async ([side, run]) => {
        const box = document.querySelector(`.answer[data-side="${side}"]`);
        if (!run) { box.innerHTML = ""; return; }
        const [ok, d] = await post(run, q);
        if (mine !== asked) return;
        if (!ok) { box.innerHTML = ""; showError(d.field || "", d.error); return; }
        const kept = box.querySelector(".written");
        box.innerHTML = "";
        box.append(provenance(d.run, side));
        if (panel === "gpt") {
          box.append(el("p", {className: "meta"}, "the next token:"), tokenTable(d.next));
          box.append(kept || el("pre", {className: "written"}));
        } else {
          d.fills.forEach((guesses, k) => box.append(el("p", {className: "meta"}, `[MASK] ${k + 1}:`), tokenTable(guesses)));
        }
      }));
    }

    function write() {
      streams.forEach(s => s.close()); streams = [];
      clearErrors();
      const q = settings();
      for (const [side, run] of sides()) {
        if (!run) continue;
        const box = document.querySelector(`.answer[data-side="${side}"]`);
        let out = box.querySelector(".written");
        if (!out) { out = el("pre", {className: "written"}); box.append(out); }
        const p = new URLSearchParams(q); p.set("run", run); p.delete("b");
        out.textContent = q.get("prompt") || ""; out.dataset.state = "writing";
        const source = new EventSource(`/api/stream/${panel}?${p}`);
        streams.push(source);
        source.addEventListener("piece", e => { out.append(JSON.parse(e.data)); });
        source.addEventListener("end", () => { source.close(); out.dataset.state = "done"; });
        source.onerror = () => { if (out.dataset.state !== "done") { source.close(); out.dataset.state = "failed";
                                  table(); } };
      }
    }
  }
  function tokenTable(rows) {
    const t = el("table", {className: "tokens"});
    for (const r of rows) {
      const bar = el("div", {className: "bar"}); bar.style.width = `${(r.p * 100).toFixed(1)}%`;
      t.append(el("tr", {}, el("td", {}, el("code", {}, JSON.stringify(r.token))),
                  el("td", {className: "num"}, `${(r.p * 100).toFixed(1)}%`), el("td", {className: "barcell"}, bar)));
    }
    return t;
  }

  function clearAnswers() { document.querySelectorAll(".answer").forEach(s => s.innerHTML = ""); }
  function showError(field, message) {
    const box = document.querySelector(`.field-error[data-field="${field}"]`) || document.getElementById("panel-error");
    box.textContent = message;
  }

  async function ask(pressed) {
    keepInAddress();
    if (go && !pressed) return;                  // slow panels ask on their button alone
    clearErrors();
    const q = settings();
    if ((input === "image" && !picture && !q.get("test")) || (panel === "clip" && !q.get("labels"))) {
      clearAnswers(); return;
    }
    const mine = ++asked;
    await Promise.all(sides().map(async ([side, run]) => {
      const box = document.querySelector(`.answer[data-side="${side}"]`);
      if (!run) { box.innerHTML = ""; return; }
      const params = new URLSearchParams(q); params.set("run", run); params.delete("b");
      if (picture) params.delete("test");
      let ok, data;
      try {
        [ok, data] = streams === "progress" ? await streamed(params, box, mine) : await asked_(params);
      } catch (err) { if (mine === asked) showError("", `the lab did not answer (${err})`); return; }
      if (mine !== asked) return;
      if (!ok) { box.innerHTML = ""; showError(data.field || "", data.error || "the lab could not answer"); return; }
      box.innerHTML = "";
      box.append(provenance(data.run, side));
      if (data.view) box.append(...view(data.view));
      else box.append(...(panel === "attack" ? attackView(data) : classifyView(data)));
      if (data.unreadable && Object.keys(data.unreadable).length)
        box.append(el("p", {className: "error"}, `the text tower cannot read ${Object.keys(data.unreadable).join(", ")}: `
                      + "words no training caption held, so those probabilities mean nothing"));
      box.dataset.prediction = data.prediction || (data.after && data.after[0].class) || "";
    }));
  }
  async function asked_(params) {
    const r = await fetch(`/api/panel/${panel}?${params}`, {method: "POST", body: picture || ""});
    return [r.ok, await r.json().catch(() => ({error: `the lab answered ${r.status}`}))];
  }

  // work that takes seconds (certification): its progress as it comes, then its answer (server-sent events read
  // from a POST, which can carry a drawing as EventSource cannot)
  async function streamed(params, box, mine) {
    const r = await fetch(`/api/stream/${panel}?${params}`, {method: "POST", body: picture || ""});
    if (!r.ok) return [false, await r.json().catch(() => ({error: `the lab answered ${r.status}`}))];
    const bar = el("progress", {max: 1, value: 0}), note = el("span", {className: "meta"});
    box.innerHTML = ""; box.append(el("p", {className: "working"}, bar, " ", note));
    const reader = r.body.getReader(), text = new TextDecoder();
    let buffer = "", answer = null;
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      if (mine !== asked) { reader.cancel(); return [true, {}]; }
      buffer += text.decode(value, {stream: true});
      let k;
      while ((k = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, k); buffer = buffer.slice(k + 2);
        const data = /^data: (.*)$/m.exec(event);
        if (!/^event: piece$/m.test(event) || !data) continue;
        const d = JSON.parse(data[1]);
        if (d.view || d.error) answer = d;
        else { bar.max = d.of; bar.value = d.done; note.textContent = `${d.done.toLocaleString()} of ${d.of.toLocaleString()} ${d.unit || ""}`; }
      }
    }
    if (answer && answer.error) return [false, answer];
    return answer ? [true, answer] : [false, {error: "the lab stopped before it answered"}];
  }

  // what a panel shows, block by block (panels/base.py's figures, bars, table, line, meta)
  function view(blocks) {
    return blocks.map(b => {
      if (b.kind === "figures") {
        const row = el("div", {className: `trio ${b.class || ""}`});
        for (const f of b.items) {
          const fig = figure(f.src, f.caption);
          if (b.class) fig.querySelector("img").className = b.class;
          if (f.pick) pickable(fig.querySelector("img"), f.pick);
          row.append(fig);
        }
        return row;
      }
      if (b.kind === "bars") return bars(b.values, b.top);
      if (b.kind === "table") {
        const t = el("table", {className: "panel-table"});
        if (b.caption) t.append(el("caption", {}, b.caption));
        t.append(el("tr", {}, ...b.columns.map(c => el("th", {}, c))));
        for (const row of b.rows) t.append(el("tr", {}, ...row.map(v => el("td", {className: typeof v === "number" ? "num" : ""},
                                                                            typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(3) : String(v)))));
        return t;
      }
      if (b.kind === "line") return el("p", {className: b.class || ""}, b.text, b.strong ? el("b", {className: b.bad ? "error" : "good"}, b.strong) : "");
      return el("p", {className: "meta"}, b.text);
    });
  }
  // pointing at a picture sets two settings to where (fractions of its width and height): a patch's place. A drag
  // goes on over the picture each answer draws anew, so it is followed on the window, not on one image.
  let dragging = null;
  function pickable(img, fields) {
    img.classList.add("pick");
    img.addEventListener("pointerdown", e => { dragging = {box: img.closest(".answer"), fields}; e.preventDefault(); pickAt(e); });
  }
  window.addEventListener("pointermove", e => { if (dragging) pickAt(e); });
  window.addEventListener("pointerup", () => { dragging = null; });
  function pickAt(e) {
    const img = dragging.box.querySelector("img.pick");
    if (!img) return;
    const r = img.getBoundingClientRect(), [fx, fy] = dragging.fields;
    form.elements[fx].value = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)).toFixed(2);
    form.elements[fy].value = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)).toFixed(2);
    keepInAddress(); clearTimeout(timer); timer = setTimeout(ask, 120);
  }

  function el(tag, props = {}, ...children) {
    const e = Object.assign(document.createElement(tag), props);
    e.append(...children);
    return e;
  }
  function provenance(run, side) {
    return el("p", {className: "provenance"}, el("b", {}, `${side}: `), el("a", {href: run.page}, run.id),
              ` · ${run.recipe} on ${run.dataset} · step ${run.step} · weights sha256 ${(run.sha256 || "?").slice(0, 16)}…`);
  }
  function bars(probabilities, top) {
    const box = el("div", {className: "bars"});
    for (const [name, p] of Object.entries(probabilities)) {
      const bar = el("div", {className: "bar" + (name === top ? " top" : "")});
      bar.style.width = `${(p * 100).toFixed(1)}%`;
      box.append(el("span", {}, name), el("div", {}, bar), el("span", {className: "num"}, `${(p * 100).toFixed(1)}%`));
    }
    return box;
  }
  function classifyView(d) {
    return [el("div", {className: "trio"}, figure(d.input, d.source)),
            el("p", {}, "prediction: ", el("b", {className: "prediction"}, d.prediction)), bars(d.probabilities, d.prediction)];
  }
  function figure(src, caption) { return el("figure", {}, el("img", {src, alt: caption}), el("figcaption", {}, caption)); }
  function says(list) { return list.map(x => `${x.class} ${(x.p * 100).toFixed(1)}%`).join(", "); }
  function attackView(d) {
    const flipped = d.before[0].class !== d.after[0].class;
    return [el("div", {className: "trio"}, figure(d.original, `before: ${d.before[0].class}`),
               figure(d.perturbation, "perturbation (amplified)"),
               figure(d.adversarial, `after: ${d.after[0].class}`)),
            el("p", {}, `${d.method.toUpperCase()} (${d.norm}), eps ${d.eps}${d.target ? `, towards ${d.target}` : ""}: `,
               el("b", {className: flipped ? "error" : ""}, flipped ? "the label flips" : "the label holds"),
               ` (largest pixel change ${d.linf.toFixed(3)}, L2 ${d.l2.toFixed(3)})`),
            el("p", {className: "meta"}, `before: ${says(d.before)}`), el("p", {className: "meta"}, `after: ${says(d.after)}`)];
  }

  // the run's most confident mistakes: a click shows one in the panel
  async function mistakes() {
    const box = document.getElementById("mistakes");
    if (!box) return;
    const r = await fetch(`/api/panel/mistakes?run=${encodeURIComponent(form.elements.run.value)}`, {method: "POST"});
    const d = await r.json();
    box.innerHTML = "";
    if (!r.ok) { box.textContent = d.error; return; }
    if (!d.mistakes.length) box.textContent = `none: it gets all ${d.of} right`;
    for (const m of d.mistakes) {
      const f = figure(m.image, `said ${m.said} (${(m.confidence * 100).toFixed(0)}%), is ${m.true}`);
      f.onclick = () => { picture = null; setTest(m.test); ask(); };
      box.append(f);
    }
  }
  form.elements.run.addEventListener("change", mistakes);

  keepInAddress();
  mistakes();
  if (input === "none" || (form.elements.test && form.elements.test.value !== "")) ask();
})();
