// peru-compras verifier's service worker: keeps /verificar and its scripts so that the app opens and verifies
// without signal. The server writes the version (a hash of every file) below, so any change installs anew.
const VERSION = "__VERSION__";
const CACHE = "verificar-" + VERSION;
const CORE = ["/verificar", "/verificar/app.js", "/verificar/payload.js", "/verificar/verdict.js", "/verificar/strings.js",
              "/verificar/crypto.js", "/verificar/app.css", "/verificar/manifest.webmanifest", "/verificar/icon.svg"];
const SIGNATURES = ["/verificar/vendor/noble-hashes/sha3.js", "/verificar/vendor/noble-hashes/utils.js",
                    "/verificar/vendor/noble-hashes/_u64.js", "/verificar/vendor/noble-secp256k1/index.js"];
const DECODER = "/verificar/vendor/jsqr/jsQR.js";

async function needsDecoder() {  // the browser's own reader makes jsQR unnecessary (60 KB less to keep)
  try {
    return !("BarcodeDetector" in self) || !(await self.BarcodeDetector.getSupportedFormats()).includes("qr_code");
  } catch (e) {
    return true;
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(CORE);
    const optional = SIGNATURES.concat((await needsDecoder()) ? [DECODER] : []);
    // the vendor files may be missing on this server (the page then says what it cannot do)
    await Promise.allSettled(optional.map((url) => cache.add(url)));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("verificar-") && name !== CACHE) { await caches.delete(name); }
    }
    await self.clients.claim();
  })());
});

// Our files: from the cache at once, refreshed from the network in the background when it answers.
// Everything else (the trust pack, the order pages) goes to the network untouched.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) { return; }
  if (url.pathname !== "/verificar" && !url.pathname.startsWith("/verificar/")) { return; }
  if (url.pathname === "/verificar/sw.js") { return; }
  const key = url.pathname === "/verificar" ? "/verificar" : url.pathname;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(key);
    const network = fetch(request).then((response) => {
      if (response.ok && response.type === "basic") { cache.put(key, response.clone()); }
      return response;
    });
    if (cached) {
      event.waitUntil(network.catch(() => undefined));
      return cached;
    }
    return network;
  })());
});
