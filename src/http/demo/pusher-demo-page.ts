/**
 * The Pusher demo page (`GET /pusher/demo`): the real pusher-js browser build
 * and laravel-echo's IIFE build, both served by the gateway
 * (`/client/pusher.min.js`, `/client/echo.iife.js`), joined to one presence
 * channel and one private channel through `/app/{key}`, authorized by the
 * hosted auth endpoint `/broadcasting/auth` with the user's JWT as bearer
 * token. It lists the presence channel's members (`here`, `joining`,
 * `leaving`), shows every event of both channels, and whispers (`client-`
 * events) to the other members. Parameters come in the URL hash:
 * `#key=<app key>&token=<jwt>&presence=room.lobby&private=user.ada`
 * (Echo's names, without the `presence-`/`private-` prefix).
 *
 * The style and the script are inline, so the page's Content-Security-Policy
 * allows exactly them by hash (client-routes.ts), and nothing else inline.
 * The script is a classic one: both libraries are IIFE builds defining
 * globals (`Pusher`, `Echo`), loaded by the two script tags before it.
 */
/** Everything between <style> and </style>: what the CSP hash covers, byte for byte. */
const PUSHER_DEMO_STYLE = `
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  fieldset { border: 1px solid #ccc; margin-bottom: 1rem; }
  input { font: inherit; width: 100%; box-sizing: border-box; }
  .row { display: grid; grid-template-columns: 2fr 1fr; gap: 1rem; }
  #state { font-weight: bold; }
  #events li { font-family: ui-monospace, monospace; font-size: 13px; }
`;

/** Everything between <script> and </script>. */
const PUSHER_DEMO_SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1));
const demo = (window.pusherDemo = { states: [], here: undefined, joined: [], left: [], events: [], whispers: [], privateSubscribed: false, echo: undefined, presence: undefined });
const members = new Map();

function renderMembers() {
  $("members").replaceChildren(...[...members.values()].map((info) => Object.assign(document.createElement("li"), { textContent: JSON.stringify(info), className: "member" })));
}
function showEvent(channel, event, data) {
  demo.events.push({ channel, event, data });
  $("events").append(Object.assign(document.createElement("li"), { textContent: channel + " " + event + " " + JSON.stringify(data) }));
}
// Presence members are keyed by what the hosted auth put in channel_data: the JWT's info claim.
const memberKey = (info) => JSON.stringify(info);

function start() {
  const key = params.get("key"), token = params.get("token"), presenceName = params.get("presence"), privateName = params.get("private");
  if (!key || !token || !presenceName) return void ($("state").textContent = "missing #key=…&token=…&presence=… in the URL");
  const tls = location.protocol === "https:";
  const port = Number(location.port) || (tls ? 443 : 80);
  const echo = (demo.echo = new Echo.default({
    broadcaster: "pusher",
    key,
    cluster: "mt1",
    wsHost: location.hostname,
    wsPort: port,
    wssPort: port,
    forceTLS: tls,
    enabledTransports: ["ws", "wss"],
    disableStats: true,
    authEndpoint: "/broadcasting/auth?key=" + encodeURIComponent(key),
    bearerToken: token,
  }));
  echo.connector.pusher.connection.bind("state_change", ({ current }) => { demo.states.push(current); $("state").textContent = current; });
  demo.presence = echo
    .join(presenceName)
    .here((users) => { demo.here = users; members.clear(); for (const info of users) members.set(memberKey(info), info); renderMembers(); })
    .joining((info) => { demo.joined.push(info); members.set(memberKey(info), info); renderMembers(); })
    .leaving((info) => { demo.left.push(info); members.delete(memberKey(info)); renderMembers(); })
    .listenForWhisper("note", (data) => demo.whispers.push(data))
    .listenToAll((event, data) => showEvent("presence-" + presenceName, event, data))
    .error((error) => console.warn("presence subscription refused", JSON.stringify(error)));
  if (privateName) {
    echo
      .private(privateName)
      .subscribed(() => { demo.privateSubscribed = true; })
      .listenToAll((event, data) => showEvent("private-" + privateName, event, data))
      .error((error) => console.warn("private subscription refused", JSON.stringify(error)));
  }
}

$("whisper").onclick = () => {
  const data = { text: $("note").value };
  demo.presence?.whisper("note", data);
};
start();
`;

export const PUSHER_DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sobranie Realtime: pusher-js and laravel-echo</title>
<style>${PUSHER_DEMO_STYLE}</style>
<script src="/client/pusher.min.js"></script>
<script src="/client/echo.iife.js"></script>
</head>
<body>
<h1>pusher-js and laravel-echo</h1>
<p>Parameters in the URL hash: <code>#key=&lt;app key&gt;&amp;token=&lt;jwt&gt;&amp;presence=room.lobby&amp;private=user.ada</code>.</p>
<p>State: <span id="state">idle</span></p>
<div class="row">
  <section><h2>Events</h2><ol id="events"></ol></section>
  <section><h2>Members</h2><ul id="members"></ul></section>
</div>
<fieldset>
  <legend>Whisper to the other members (client event)</legend>
  <label>Note <input id="note" value="hello"></label>
  <button id="whisper">Whisper</button>
</fieldset>
<script>${PUSHER_DEMO_SCRIPT}</script>
</body>
</html>
`;

/** The inline style and script, for their CSP hashes. */
export const PUSHER_DEMO_INLINE = { style: PUSHER_DEMO_STYLE, script: PUSHER_DEMO_SCRIPT } as const;
