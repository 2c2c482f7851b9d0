// Preload (node --require) that keeps test servers on loopback.
//
// server-everything calls app.listen(PORT), which binds every interface. The
// end-to-end tests and the demo only ever reach it through 127.0.0.1, so bind
// it there: a listen() given a port but no host gets MCPGATE_LISTEN_HOST
// (default 127.0.0.1). Listens on a path, a file descriptor or an explicit
// host are left alone.
"use strict";
const net = require("node:net");

const host = process.env.MCPGATE_LISTEN_HOST || "127.0.0.1";
const listen = net.Server.prototype.listen;
const isPort = (v) => typeof v === "number" || (typeof v === "string" && /^\d+$/.test(v));

net.Server.prototype.listen = function (...args) {
  if (isPort(args[0])) {
    if (typeof args[1] !== "string") args.splice(1, 0, host);
  } else if (args[0] && typeof args[0] === "object" && !Array.isArray(args[0])) {
    const o = args[0];
    if (o.host === undefined && o.path === undefined && o.fd === undefined && o._handle === undefined && o.handle === undefined) {
      args[0] = { ...o, host };
    }
  }
  return listen.apply(this, args);
};
