/** 127.<block>.*.* blocks handed out; 127.0.0.0/8 is all loopback on Linux. */
const BLOCKS = 250;
/** Random first block: TIME_WAIT of an earlier run (60 s) stays on other addresses. */
let nextBlock = 1 + Math.floor(Math.random() * BLOCKS);

/**
 * Source addresses for one fleet of load-generator processes: process `p`
 * of the fleet connects from 127.<block>.<p+1>.1…<perProc>, and every fleet
 * gets a block of its own. A connection the client closes stays in TIME_WAIT
 * for 60 s holding its (source address, port) pair, and binding a source
 * address searches its ~28k ephemeral ports past those: with one fixed set
 * of addresses, the third 10,000-client phase of a run spent its client CPU
 * in that search (connect at 600/s against 3,000/s in a fresh run).
 */
export function sourceAddresses(procs: number, perProc: number): string[][] {
  const block = nextBlock;
  nextBlock = (nextBlock % BLOCKS) + 1;
  return Array.from({ length: procs }, (_, proc) => Array.from({ length: perProc }, (_, k) => `127.${block}.${proc + 1}.${k + 1}`));
}
