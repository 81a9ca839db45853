// SambungChat's service worker: it keeps the application's shell (the page, its scripts, its
// styles, its icon) so that the installed app opens without the network, and nothing else.
// API answers, shared chats and everything else always go to the server and are never kept.
// The network comes first: a new server's files are used as soon as it answers.

const SHELL = "sambung-shell-v1";
const FILES = ["/", "/assets/app.js", "/assets/ui.js", "/assets/i18n.js", "/assets/locales/en.json", "/assets/locales/id.json", "/assets/app.css", "/assets/highlight.css", "/assets/icon.svg", "/manifest.webmanifest"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== SHELL).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !FILES.includes(url.pathname)) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(SHELL).then((cache) => cache.put(url.pathname, copy));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname).then((kept) => kept || Response.error())),
  );
});
