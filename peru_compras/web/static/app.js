// peru-compras verification page: check a PDF in hand without sending it anywhere.
// The file is read and hashed in this browser (WebCrypto SHA-256, or the fallback below when the page
// is not in a secure context); nothing about it is sent over the network. Text is only ever set with
// textContent: no markup is built from data.
(function () {
  "use strict";
  var node = document.getElementById("pc-data");
  if (!node) { return; }
  var data = JSON.parse(node.textContent);
  var m = data.messages;
  var MAX_BYTES = 100 * 1024 * 1024;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function hex(buffer) {
    var bytes = new Uint8Array(buffer), out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return out;
  }

  // SHA-256 (FIPS 180-4) for browsers without crypto.subtle (plain HTTP on a non-local address).
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];
  function sha256Fallback(buffer) {
    var data = new Uint8Array(buffer), length = data.length;
    var padded = new Uint8Array(((length + 9 + 63) >> 6) << 6);
    padded.set(data);
    padded[length] = 0x80;
    var view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(length / 0x20000000));
    view.setUint32(padded.length - 4, (length << 3) >>> 0);
    var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var w = new Uint32Array(64);
    for (var off = 0; off < padded.length; off += 64) {
      for (var t = 0; t < 16; t++) { w[t] = view.getUint32(off + t * 4); }
      for (t = 16; t < 64; t++) {
        var a15 = w[t - 15], a2 = w[t - 2];
        var s0 = ((a15 >>> 7) | (a15 << 25)) ^ ((a15 >>> 18) | (a15 << 14)) ^ (a15 >>> 3);
        var s1 = ((a2 >>> 17) | (a2 << 15)) ^ ((a2 >>> 19) | (a2 << 13)) ^ (a2 >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) >>> 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (t = 0; t < 64; t++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) >>> 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        k = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] = (h[0] + a) >>> 0; h[1] = (h[1] + b) >>> 0; h[2] = (h[2] + c) >>> 0; h[3] = (h[3] + d) >>> 0;
      h[4] = (h[4] + e) >>> 0; h[5] = (h[5] + f) >>> 0; h[6] = (h[6] + g) >>> 0; h[7] = (h[7] + k) >>> 0;
    }
    var out = new ArrayBuffer(32), ov = new DataView(out);
    for (t = 0; t < 8; t++) { ov.setUint32(t * 4, h[t]); }
    return out;
  }

  var subtle = window.isSecureContext && window.crypto && window.crypto.subtle;
  function digest(buffer) {
    if (subtle) { return window.crypto.subtle.digest("SHA-256", buffer); }
    return Promise.resolve(sha256Fallback(buffer));
  }

  var input = document.getElementById("pdf");
  var out = document.getElementById("file-result");

  if (input && out && !subtle) {
    var warn = el("p", "notice warn", m.no_subtle);
    warn.id = "no-subtle";
    out.parentNode.insertBefore(warn, out);
  }

  function hashRow(label, value) {
    var p = el("p");
    p.appendChild(el("span", null, label + ":"));
    p.appendChild(el("br"));
    p.appendChild(el("code", "hash", value));
    return p;
  }

  function show(kind, title, body, yours, name) {
    out.textContent = "";
    var box = el("div", "result " + kind);
    box.setAttribute("role", "status");
    box.id = "file-verdict";
    box.dataset.verdict = kind;
    box.appendChild(el("h3", null, title));
    if (body) { box.appendChild(el("p", null, body)); }
    if (name) { box.appendChild(el("p", "sub url", m.file_name + ": " + name)); }
    if (yours) {
      box.appendChild(hashRow(m.hash_yours, yours));
      box.appendChild(hashRow(m.hash_registered, data.sha256));
    }
    out.appendChild(box);
    if (box.scrollIntoView) { box.scrollIntoView({ block: "nearest" }); }
  }

  if (input && out) {
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) { out.textContent = ""; return; }
      if (file.size > MAX_BYTES) { show("warn", m.file_too_big, ""); return; }
      show("info", m.file_reading, "");
      file.arrayBuffer().then(function (buffer) {
        var head = new TextDecoder("latin1").decode(new Uint8Array(buffer, 0, Math.min(1024, buffer.byteLength)));
        var isPdf = head.indexOf("%PDF-") !== -1;
        return digest(buffer).then(function (value) {
          var yours = hex(value);
          if (yours === data.sha256) {
            if (data.status === "annulled") { show("warn", m.file_ok_annulled, m.file_ok_not_valid_body, yours, file.name); }
            else if (data.status === "superseded") { show("warn", m.file_ok_superseded, m.file_ok_not_valid_body, yours, file.name); }
            else { show("ok", m.file_ok, m.file_ok_body, yours, file.name); }
          } else {
            show("bad", m.file_bad, isPdf ? m.file_bad_body : m.file_not_pdf + " " + m.file_bad_body, yours, file.name);
          }
        });
      }).catch(function () { show("warn", m.file_error, ""); });
    });
  }

  // The published PDF: the server compares it with the chain (cached; rate-limited for other hosts).
  var doc = document.getElementById("documento");
  if (doc && doc.dataset.state === "pending" && window.fetch) {
    var text = document.getElementById("doc-text");
    var detail = document.getElementById("doc-detail");
    var now = document.getElementById("doc-now");
    fetch(data.check_url, { headers: { Accept: "application/json" }, credentials: "omit" })
      .then(function (response) { return response.json(); })
      .then(function (result) {
        var outcome = result.outcome;
        var kind = outcome === "original" ? "ok" : (outcome === "altered" || outcome === "missing") ? "bad" : "warn";
        doc.className = kind;
        doc.dataset.state = outcome;
        doc.querySelector(".mark").textContent = kind === "ok" ? "✓" : kind === "bad" ? "✗" : "!";
        text.textContent = m["doc_" + outcome] || outcome;
        detail.textContent = result.detail_text || "";
        if (now && outcome !== "rate_limited") { now.remove(); }
      })
      .catch(function () { /* keep the "check now" link */ });
  }
})();
