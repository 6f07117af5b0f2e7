/**
 * The demo page (`GET /` and `/demo`): one room's live events and presence
 * through the SDK bundle, and a form that publishes a test event through the
 * HTTP publish API, so it travels the whole way (broker, worker, back to the
 * page). Parameters may come in the URL hash: `#token=…&key=…&room=room:lobby&transport=sse`.
 *
 * The style and the script are inline, so the page's Content-Security-Policy
 * allows exactly them by hash (client-routes.ts), and nothing else inline.
 */
/** Everything between <style> and </style>: what the CSP hash covers, byte for byte. */
const DEMO_STYLE = `
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  fieldset { border: 1px solid #ccc; margin-bottom: 1rem; }
  label { display: block; margin: .3rem 0; }
  input, select { font: inherit; width: 100%; box-sizing: border-box; }
  .row { display: grid; grid-template-columns: 2fr 1fr; gap: 1rem; }
  #state { font-weight: bold; }
  #events li { font-family: ui-monospace, monospace; font-size: 13px; }
`;

/** Everything between <script> and </script>. */
const DEMO_SCRIPT = `
import { connect } from "/client/sobranie-client.js";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1));
for (const name of ["token", "key", "room", "transport"]) if (params.has(name)) $(name).value = params.get(name);
const demo = (window.sobranieDemo = { events: [], states: [], members: new Map(), client: undefined });

function renderPresence(note) {
  const list = $("presence");
  list.replaceChildren();
  if (note) return list.append(Object.assign(document.createElement("li"), { textContent: note }));
  for (const [user, info] of demo.members) {
    list.append(Object.assign(document.createElement("li"), { textContent: user + (info && info.name ? " (" + info.name + ")" : ""), className: "member" }));
  }
}

async function start() {
  demo.client?.close();
  demo.members.clear();
  const room = $("room").value.trim();
  const client = (demo.client = connect({ url: location.origin, token: $("token").value.trim(), transport: $("transport").value }));
  const showEvent = (event) => {
    demo.events.push(event);
    const item = document.createElement("li");
    item.dataset.id = event.id;
    item.textContent = (event.seq ?? "-") + " " + event.type + " " + JSON.stringify(event.data);
    $("events").append(item);
  };
  // Subscribed until the server refuses or ends the subscription: the SDK then forgets it, and so does the page.
  let subscribed = true;
  const refused = (error) => { subscribed = false; $("state").textContent = "refused: " + error.message; renderPresence("(not subscribed)"); };
  client.on("state", ({ state, transport }) => {
    demo.states.push(state);
    $("state").textContent = state + " (" + transport + ")";
    // Every connection subscribes again; the SDK resolves this once the server
    // confirmed that subscribe, so the listing asked then includes this page
    // and everyone who joined before it, and later joins and leaves apply on top.
    if (state === "connected" && subscribed) client.subscribe(room, showEvent, { presence: true }).then(() => refreshPresence(client, room), refused);
  });
  client.on("join", ({ channel, user, info }) => { if (channel === room) { demo.members.set(user, info); renderPresence(); } });
  client.on("leave", ({ channel, user }) => { if (channel === room) { demo.members.delete(user); renderPresence(); } });
  // A busy room's changes come as counts: list a small room again, show a big one's count.
  client.on("members", ({ channel, count }) => { if (channel === room) { if (count <= 100) refreshPresence(client, room); else renderPresence(count + " members"); } });
  client.on("unsubscribed", ({ channel, reason }) => { if (channel === room) refused({ message: "the server ended the subscription (" + reason + ")" }); });
  client.on("error", (error) => console.warn("sobranie:", error.code, error.message));
  client.subscribe(room, showEvent, { presence: true }).catch(refused);
}

// The listing replaces what the page knew (who left while it was away is gone);
// frames on one connection are ordered, so joins and leaves after it still apply.
async function refreshPresence(client, room) {
  if (client.transportKind !== "websocket") return renderPresence("(presence needs the WebSocket transport)");
  try {
    const members = await client.presence(room);
    demo.members.clear();
    for (const member of members) demo.members.set(member.user, member.info);
    renderPresence();
  } catch (error) {
    renderPresence(error.code === "unavailable" ? "(presence not available on this server)" : "(" + error.message + ")");
  }
}

$("connect").onclick = start;
$("publish").onclick = async () => {
  const response = await fetch("/api/v1/publish", {
    method: "POST",
    headers: { authorization: "Bearer " + $("key").value.trim(), "content-type": "application/json" },
    body: JSON.stringify({ channel: $("room").value.trim(), type: $("type").value.trim(), data: { text: $("text").value } }),
  });
  const body = await response.json();
  $("published").textContent = response.ok ? "sent " + body.id : "refused: " + (body.error ? body.error.message : response.status);
};
if (params.has("token")) start();
`;

export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sobranie Realtime demo</title>
<style>${DEMO_STYLE}</style>
</head>
<body>
<h1>Sobranie Realtime</h1>
<p>Open a link the gateway printed at start (<code>npm start</code>): it fills in a demo token and the API key. Or paste your own.</p>
<fieldset>
  <legend>Connection</legend>
  <label>Token <input id="token" autocomplete="off"></label>
  <label>Room <input id="room" value="room:lobby"></label>
  <label>Transport <select id="transport"><option>auto</option><option>websocket</option><option>sse</option></select></label>
  <button id="connect">Connect</button> <span>State: <span id="state">idle</span></span>
</fieldset>
<div class="row">
  <section><h2>Events</h2><ol id="events"></ol></section>
  <section><h2>Presence</h2><ul id="presence"><li>(not connected)</li></ul></section>
</div>
<fieldset>
  <legend>Publish a test event (HTTP API)</legend>
  <label>API key <input id="key" autocomplete="off"></label>
  <label>Type <input id="type" value="message.created"></label>
  <label>Text <input id="text" value="hello"></label>
  <button id="publish">Publish</button> <span id="published"></span>
</fieldset>
<script type="module">${DEMO_SCRIPT}</script>
</body>
</html>
`;

/** The inline style and script, for their CSP hashes. */
export const DEMO_INLINE = { style: DEMO_STYLE, script: DEMO_SCRIPT } as const;
