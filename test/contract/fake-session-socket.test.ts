import { FakeFanout, FakeSocket } from "../support/fake-socket.js";
import { sessionSocketContract } from "./session-socket.contract.js";

// The core's test double keeps the guarantees the real sockets keep, so a
// core test on it cannot pass on behaviour no runtime has.
sessionSocketContract("FakeSocket and FakeFanout (the core's test double)", async () => {
  const fanout = new FakeFanout();
  return {
    fanout,
    connect: async () => {
      const closeCallbacks: number[] = [];
      const socket = new FakeSocket((code) => closeCallbacks.push(code));
      fanout.sockets.add(socket);
      return { socket, received: socket.sent, closeCallbacks, peerClose: () => socket.closedWith, hangUp: () => socket.hangUp() };
    },
    stop: async () => {},
  };
});
