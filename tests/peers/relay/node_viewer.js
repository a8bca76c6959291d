// Viewers written with the official socket.io-client: --clients N viewers watch one stream on a
// relay for --seconds and print one JSON line per received media frame:
// {"ev":"media","client","track","seq","key","len","sha1"}, then {"ev":"done"}.
//   node tests/peers/relay/node_viewer.js --url http://127.0.0.1:8080 --stream pi1/cam0 --clients 3 --seconds 4
// With an https:// URL, --ca FILE (PEM) is the only certificate authority trusted.
const { io } = require("socket.io-client");
const crypto = require("crypto");
const fs = require("fs");

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const clients = Number(args.clients || 1);
const seconds = Number(args.seconds || 4);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const sockets = [];
for (let c = 0; c < clients; c++) {
  const tls = args.ca ? { ca: fs.readFileSync(args.ca) } : {};
  const s = io(args.url, { transports: ["websocket"], reconnection: false, timeout: 5000, ...tls });
  sockets.push(s);
  s.on("connect", () => {
    s.timeout(5000).emit("watch", { stream: args.stream }, (err, ack) => {
      out({ ev: "watching", client: c, err: err ? String(err) : null, ack });
    });
  });
  s.on("connect_error", (e) => out({ ev: "connect_error", client: c, message: e.message,
    cause: String((e.description && (e.description.message || e.description.error)) || "") }));
  s.on("media", (meta, data) => {
    const buf = Buffer.from(data);
    out({ ev: "media", client: c, track: meta.track, seq: meta.seq, key: meta.key, len: buf.length,
      sha1: crypto.createHash("sha1").update(buf).digest("hex") });
  });
}
setTimeout(() => {
  sockets.forEach((s) => s.close());
  out({ ev: "done" });
  process.exit(0);
}, seconds * 1000);
