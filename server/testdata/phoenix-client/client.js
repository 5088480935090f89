// Drives the server's Phoenix channel endpoint with the official Phoenix
// JavaScript client, for server/live_phoenix_test.go.
//
// Usage: node client.js <socket url, e.g. ws://127.0.0.1:4004/socket>
//
// Reads one JSON command per line on stdin:
//   {"cmd":"join","topic":"killmails:lobby","params":{...}}
//   {"cmd":"push","id":1,"event":"subscribe_systems","payload":{...}}
//   {"cmd":"leave"}
//   {"cmd":"exit"}
// and prints one JSON line per thing that happens on stdout:
//   {"type":"open"} {"type":"join","status":"ok","response":{...}}
//   {"type":"reply","id":1,"status":"ok","response":{...}}
//   {"type":"event","event":"killmail_update","payload":{...}}
//   {"type":"left"} {"type":"channel_close"} {"type":"channel_error"}
//   {"type":"socket_close","code":1001}
"use strict";

const { Socket } = require("phoenix");
const WebSocket = require("ws");
const readline = require("readline");

const url = process.argv[2];
if (!url) {
  console.error("usage: node client.js <socket url>");
  process.exit(2);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const socket = new Socket(url, {
  transport: WebSocket,
  params: { client_id: "phoenix-js-test" },
  reconnectAfterMs: () => 60000,
});
socket.onOpen(() => out({ type: "open" }));
socket.onClose((ev) => out({ type: "socket_close", code: ev && ev.code, reason: ev && ev.reason }));
socket.onError((err) => out({ type: "socket_error", message: String((err && err.message) || err) }));
socket.connect();

const EVENTS = [
  "killmail_update",
  "kill_count_update",
  "preload_status",
  "preload_batch",
  "preload_complete",
];

let channel = null;

const commands = {
  join(cmd) {
    channel = socket.channel(cmd.topic, cmd.params || {});
    for (const ev of EVENTS) {
      channel.on(ev, (payload) => out({ type: "event", event: ev, payload }));
    }
    channel.onClose(() => out({ type: "channel_close" }));
    channel.onError((reason) => out({ type: "channel_error", reason }));
    channel
      .join()
      .receive("ok", (response) => out({ type: "join", status: "ok", response }))
      .receive("error", (response) => out({ type: "join", status: "error", response }))
      .receive("timeout", () => out({ type: "join", status: "timeout" }));
  },
  push(cmd) {
    channel
      .push(cmd.event, cmd.payload || {})
      .receive("ok", (response) => out({ type: "reply", id: cmd.id, status: "ok", response }))
      .receive("error", (response) => out({ type: "reply", id: cmd.id, status: "error", response }))
      .receive("timeout", () => out({ type: "reply", id: cmd.id, status: "timeout" }));
  },
  leave() {
    channel.leave().receive("ok", () => out({ type: "left" }));
  },
  exit() {
    socket.disconnect(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000);
  },
};

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ type: "bad_command", line });
    return;
  }
  const fn = commands[cmd.cmd];
  if (!fn) {
    out({ type: "bad_command", line });
    return;
  }
  fn(cmd);
});
process.stdin.on("end", () => commands.exit());
