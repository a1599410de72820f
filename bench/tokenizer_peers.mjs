// Peer side of `troupe tokenizer bench`: times one JavaScript tokenizer encoding a corpus with GPT-2's
// vocabulary and writes the ids for the exactness check.
//
// usage (run with the node_modules folder holding tiktoken and js-tiktoken as the working directory):
//   node tokenizer_peers.mjs tiktoken|js-tiktoken CORPUS RUNS IDS_OUT
// prints one JSON line: {"lib": ..., "seconds": [per run], "tokens": n, "load_seconds": s}
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';

const [lib, corpus, runsText, idsOut] = process.argv.slice(2);
const runs = Number(runsText);
if (!lib || !corpus || !(runs > 0) || !idsOut) {
  console.error('usage: node tokenizer_peers.mjs tiktoken|js-tiktoken CORPUS RUNS IDS_OUT');
  process.exit(2);
}
const require = createRequire(process.cwd() + '/');
const text = readFileSync(corpus, 'utf8');

const loadStart = process.hrtime.bigint();
let encode;
if (lib === 'tiktoken') {
  const { get_encoding } = require('tiktoken');  // Rust tiktoken compiled to WebAssembly
  const enc = get_encoding('gpt2');
  encode = (t) => enc.encode_ordinary(t);
} else if (lib === 'js-tiktoken') {
  const { getEncoding } = require('js-tiktoken');  // pure JavaScript port
  const enc = getEncoding('gpt2');
  encode = (t) => enc.encode(t, [], []);
} else {
  console.error(`unknown lib ${lib}`);
  process.exit(2);
}
const loadSeconds = Number(process.hrtime.bigint() - loadStart) / 1e9;

const seconds = [];
let ids = null;
for (let r = 0; r < runs; ++r) {
  const start = process.hrtime.bigint();
  const out = encode(text);
  seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  if (ids === null) ids = out;
}
const buf = Buffer.alloc(ids.length * 4);
for (let i = 0; i < ids.length; ++i) buf.writeUInt32LE(ids[i], i * 4);
writeFileSync(idsOut, buf);
console.log(JSON.stringify({ lib, seconds, tokens: ids.length, load_seconds: loadSeconds }));
