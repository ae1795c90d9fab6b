// The web client's service worker: it keeps the page's own files (the "shell") so the app starts
// without a network, and nothing else. Messages never pass through it: they come over the
// WebSocket, which service workers do not see; config.json and Cognito are not intercepted.
// The shell is fetched from the network first (a deploy shows at once) and served from the cache
// only when the network fails.

const CACHE = "chat-shell-v1";
const SHELL = [
  "./",
  "index.html",
  "app.js",
  "style.css",
  "manifest.webmanifest",
  "icon.svg",
  "icon-192.png",
  "icon-512.png",
];
const SHELL_URLS = new Set(SHELL.map((path) => new URL(path, self.registration.scope).href));

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  url.search = "";
  if (request.method !== "GET" || !SHELL_URLS.has(url.href)) return; // the browser's own handling
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(url.href, copy)));
        }
        return response;
      })
      .catch(() => caches.match(url.href).then((cached) => cached ?? Response.error())),
  );
});
