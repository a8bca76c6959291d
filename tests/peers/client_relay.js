// A Node socket.io v4 relay for the client's tests: same behaviour and output as client_relay.py.
// Usage: node client_relay.js --port N [--token T] [--path /socket.io/] [--ping-interval ms] [--ping-timeout ms]
const http = require("http");
const zlib = require("zlib");
const { Server } = require("socket.io");

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf("--" + name);
  return i >= 0 ? args[i + 1] : def;
};
const port = Number(opt("port"));
const token = opt("token", null);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const server = http.createServer();
const io = new Server(server, {
  path: opt("path", "/socket.io/"),
  pingInterval: Number(opt("ping-interval", 25000)),
  pingTimeout: Number(opt("ping-timeout", 20000)),
  maxHttpBufferSize: Number(opt("max-payload", 1e6)),
});

let mediaCount = 0;
for (const name of ["/", "/admin"]) {
  const nsp = io.of(name);
  nsp.use((socket, next) => {
    const auth = socket.handshake.auth;
    if (token !== null && (!auth || auth.token !== token)) {
      out({ ev: "refused", ns: name, auth });
      return next(new Error("bad token"));
    }
    next();
  });
  nsp.on("connection", (socket) => {
    const q = new URLSearchParams(socket.handshake.query).toString();
    out({ ev: "connect", ns: name, sid: socket.id, auth: socket.handshake.auth, query: q,
          header: socket.handshake.headers["x-test"] || null, transport: socket.conn.transport.name });
    socket.on("disconnect", (reason) => out({ ev: "disconnect", ns: name, reason }));
    socket.on("echo", (...a) => socket.emit("echo-back", ...a));
    socket.on("ack-me", (...a) => { const cb = a.pop(); cb(...a); });
    socket.on("which-transport", (cb) => cb(socket.conn.transport.name));
    socket.on("ask-me", async (...a) => {
      // The client acks with several arguments; emitWithAck resolves only the first one.
      socket.timeout(5000).emit("question", ...a, (err, ...answer) => {
        if (err) { out({ ev: "error", what: String(err) }); return; }
        socket.emit("answer", ...answer);
      });
    });
    socket.on("media", (meta, data) => {
      mediaCount += 1;
      out({ ev: "media", ns: name, seq: meta.seq, key: meta.key, len: data.length,
            crc: zlib.crc32 ? zlib.crc32(data) : null, count: mediaCount });
    });
  });
}

server.listen(port, "127.0.0.1", () => out({ ev: "ready", port }));
