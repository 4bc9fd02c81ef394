#!/usr/bin/env node
// A consumer-group consumer written with grpc-js + proto-loader, to prove a Node.js consumer can join a
// group beside consumers in other languages (tests/groups/test_node_consumer.py).
//
//   ALLSOURCE_TOKEN=<api key> node tests/node/consumer.mjs --query HOST:PORT --group NAME --name NAME \
//       [--max-in-flight N] [--nack-first]
//
// Opens QueryService.Consume, joins the group, and acks every delivered batch with one ConsumeAck. With
// --nack-first the first event it receives is nacked (NACK_ACTION_RETRY) instead of acked, once. Each
// delivered event is checked (stream id, type, JSON payload, position order within the batch, retry
// count). Prints JSON lines to stdout:
//   {"joined": "<consumer id>", "group": "<name>"}                      once, after the join
//   {"delivered": [[position, stream_id, retry_count], ...], "acked": [...], "nacked": [...]}  per batch
//   {"done": true, "acked_count": <count>, "batches": <count>}         at the end
// The consumer stops when its standard input closes: it half-closes the stream, waits for the server to
// end it, prints the "done" line and exits 0. Any mismatch or unexpected error goes to stderr, exit 1.

import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROTOS = path.resolve(HERE, '..', '..', 'protos');
const END_GRACE_MS = 10000;

class Mismatch extends Error {}

function fail(message) {
  throw new Mismatch(message);
}

function check(condition, message) {
  if (!condition) fail(message);
}

function parseArgs(argv) {
  const valued = { '--query': 'query', '--group': 'group', '--name': 'name', '--max-in-flight': 'maxInFlight' };
  const out = { maxInFlight: '0', nackFirst: false };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s, 2);
    if (flag === '--nack-first') {
      out.nackFirst = true;
      continue;
    }
    if (!(flag in valued)) fail(`unknown argument ${argv[i]}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) fail(`${flag} needs a value`);
    }
    out[valued[flag]] = value;
  }
  for (const flag of ['--query', '--group', '--name']) {
    if (!out[valued[flag]]) fail(`missing ${flag}`);
  }
  return out;
}

async function loadModules() {
  try {
    const grpc = (await import('@grpc/grpc-js')).default;
    const protoLoader = (await import('@grpc/proto-loader')).default;
    return { grpc, protoLoader };
  } catch (err) {
    fail(`cannot load @grpc/grpc-js or @grpc/proto-loader (run npm ci in the repository root): ${err.message}`);
  }
}

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { grpc, protoLoader } = await loadModules();
  const definition = protoLoader.loadSync(
    ['allsource/v1/groups.proto', 'allsource/v1/query.proto'].map((p) => path.join(PROTOS, p)),
    { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTOS] },
  );
  const v1 = grpc.loadPackageDefinition(definition).allsource.v1;
  const metadata = new grpc.Metadata();
  if (process.env.ALLSOURCE_TOKEN) metadata.set('authorization', `Bearer ${process.env.ALLSOURCE_TOKEN}`);
  const query = new v1.QueryService(args.query, grpc.credentials.createInsecure());

  let acked = 0;
  let batches = 0;
  let nackPending = args.nackFirst;
  let joined = false;
  let stopping = false;

  try {
    await new Promise((resolve, reject) => {
      const call = query.Consume(metadata);
      let settled = false;
      const finish = (err) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      const stop = () => {
        if (stopping) return;
        stopping = true;
        call.end(); // half-close: the server ends the stream, handing back anything unacked
        setTimeout(() => {
          call.cancel();
          finish(new Mismatch(`the server did not end the stream within ${END_GRACE_MS} ms of the half-close`));
        }, END_GRACE_MS).unref();
      };

      call.on('data', (message) => {
        try {
          if (message.content === 'joined') {
            check(!joined, 'joined twice');
            joined = true;
            check(message.joined.consumer_id !== '', 'empty consumer id');
            check(message.joined.group && message.joined.group.name === args.group,
              `joined group ${message.joined.group && message.joined.group.name}, expected ${args.group}`);
            emit({ joined: message.joined.consumer_id, group: message.joined.group.name });
            return;
          }
          check(message.content === 'delivery', `unexpected message ${message.content}`);
          check(joined, 'a delivery before the join was confirmed');
          const events = message.delivery.events;
          check(events.length > 0, 'an empty delivery');
          const delivered = [];
          const ackPositions = [];
          const nackPositions = [];
          let previous = -1n;
          for (const d of events) {
            const e = d.event;
            check(e && e.position !== undefined, 'a delivered event without its event');
            const position = BigInt(e.position);
            check(position > previous, `positions not ascending within the batch: ${previous} then ${position}`);
            previous = position;
            check(e.stream_id !== '', `event at ${position} has no stream id`);
            check(e.event_type !== '', `event at ${position} has no type`);
            check(Buffer.isBuffer(e.payload), `event at ${position}: payload is not bytes`);
            try {
              JSON.parse(e.payload.toString('utf8'));
            } catch (err) {
              fail(`event at ${position}: payload is not JSON: ${err.message}`);
            }
            check(Number.isInteger(d.retry_count) && d.retry_count >= 0, `event at ${position}: retry_count ${d.retry_count}`);
            delivered.push([Number(position), e.stream_id, d.retry_count]);
            if (nackPending) {
              nackPending = false;
              nackPositions.push(e.position);
            } else {
              ackPositions.push(e.position);
            }
          }
          if (stopping) return; // stopping: leave them unacked, the group hands them to the others
          if (nackPositions.length) {
            call.write({ nack: { positions: nackPositions, action: 'NACK_ACTION_RETRY', reason: 'node nack' } });
          }
          if (ackPositions.length) call.write({ ack: { positions: ackPositions } });
          acked += ackPositions.length;
          batches += 1;
          emit({ delivered, acked: ackPositions.map(Number), nacked: nackPositions.map(Number) });
        } catch (err) {
          call.cancel();
          finish(err);
        }
      });
      call.on('error', (err) => {
        if (stopping && err.code === grpc.status.CANCELLED) finish();
        else finish(err);
      });
      call.on('end', () => finish(stopping ? null : new Mismatch('the server ended the stream unasked')));

      call.write({ join: { group: args.group, consumer_name: args.name, max_in_flight: Number(args.maxInFlight) } });
      process.stdin.on('end', stop);
      process.stdin.on('close', stop);
      process.stdin.resume();
    });
    emit({ done: true, acked_count: acked, batches });
  } finally {
    query.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    if (err instanceof Mismatch) {
      process.stderr.write(`node consumer: ${err.message}\n`);
    } else if (err && typeof err.code === 'number' && err.details !== undefined) {
      process.stderr.write(`node consumer: unexpected gRPC error ${err.code}: ${err.details}\n`);
    } else {
      process.stderr.write(`node consumer: ${err && err.stack ? err.stack : err}\n`);
    }
    process.exit(1);
  },
);
