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
  const KEEP = ["run", "b", "test", "eps", "method", "norm", "steps", "target", "seed", "prompt", "temperature",
                "top_k", "tokens", "text", "top", "labels", "n", "seed_b"];
  if (form.dataset.input !== "image") { textPanel(); return; }
  const canvas = document.getElementById("draw"), g = canvas.getContext("2d");

  function blank() { g.fillStyle = "#000"; g.fillRect(0, 0, canvas.width, canvas.height); }
  blank();

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
  function setTest(v) { const t = form.elements.test; if (t) t.value = v; }

  // settings: in the address, and each change asks again (the slider after a pause)
  form.addEventListener("input", e => {
    if (e.target.name === "test") picture = null;
    if (e.target.type === "file") return;
    clearTimeout(timer); timer = setTimeout(ask, e.target.type === "range" ? 120 : 300);
  });
  form.addEventListener("change", e => { if (e.target.tagName === "SELECT") ask(); });

  function settings() {
    const q = new URLSearchParams();
    for (const k of KEEP) { const el = form.elements[k]; if (el && el.value !== "") q.set(k, el.value); }
    return q;
  }
  function keepInAddress() {
    const q = settings();
    history.replaceState(null, "", `${location.pathname}?${q}`);
    for (const out of document.querySelectorAll("output[id$='-shown']")) {
      const input = form.elements[out.id.replace("-shown", "")];
      if (input) out.textContent = (+input.value).toFixed(input.name === "eps" ? 3 : 2);
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
        } else if (panel === "gan") {
          box.append(el("p", {className: "meta"}, `${d.n} samples, seed ${d.seed}:`),
                     el("img", {className: "grid", src: d.grid, alt: `samples for seed ${d.seed}`}),
                     el("p", {className: "meta"}, `from seed ${d.seed}'s code to seed ${d.seed_b}'s, ${d.steps} steps:`),
                     el("img", {className: "grid walk", src: d.walk, alt: "the walk between two codes"}));
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

  async function ask() {
    keepInAddress();
    clearErrors();
    const q = settings();
    if ((!picture && !q.get("test")) || (panel === "clip" && !q.get("labels"))) { clearAnswers(); return; }
    const mine = ++asked;
    const sides = [["A", q.get("run")], ["B", q.get("b")]];
    await Promise.all(sides.map(async ([side, run]) => {
      const box = document.querySelector(`.answer[data-side="${side}"]`);
      if (!run) { box.innerHTML = ""; return; }
      const params = new URLSearchParams(q); params.set("run", run); params.delete("b");
      if (picture) params.delete("test");
      let r;
      try {
        r = await fetch(`/api/panel/${panel}?${params}`, {method: "POST", body: picture || ""});
      } catch (err) { if (mine === asked) showError("", `the lab did not answer (${err})`); return; }
      const data = await r.json().catch(() => ({error: `the lab answered ${r.status}`}));
      if (mine !== asked) return;
      if (!r.ok) { box.innerHTML = ""; showError(data.field || "", data.error || `error ${r.status}`); return; }
      box.innerHTML = "";
      box.append(provenance(data.run, side), ...(panel === "attack" ? attackView(data) : classifyView(data)));
      if (data.unreadable && Object.keys(data.unreadable).length)
        box.append(el("p", {className: "error"}, `the text tower cannot read ${Object.keys(data.unreadable).join(", ")}: `
                      + "words no training caption held, so those probabilities mean nothing"));
      box.dataset.prediction = data.prediction || (data.after && data.after[0].class) || "";
    }));
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
  if (form.elements.test && form.elements.test.value !== "") ask();
})();
