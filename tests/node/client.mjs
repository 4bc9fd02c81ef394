#!/usr/bin/env node
// A grpc-js client exercising the public AllSource API from Node.js, to prove the protos and the
// server's error model work outside Python.
//
//   ALLSOURCE_TOKEN=<api key> node tests/node/client.mjs --ingest HOST:PORT --query HOST:PORT --stream STREAM_ID
//
// Steps: append three events with expected version NO_STREAM; read the stream forwards and check
// versions, ids, types, payloads and metadata; append again with NO_STREAM and check the ABORTED
// error carries a google.rpc.Status whose ErrorInfo says WRONG_EXPECTED_VERSION (actual_version "3");
// fold the entity state and check the merge. On success prints one JSON line to stdout and exits 0;
// on any mismatch prints what went wrong to stderr and exits 1.

import crypto from 'node:crypto';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROTOS = path.resolve(HERE, '..', '..', 'protos');
const DEADLINE_MS = 5000;

class Mismatch extends Error {}

function fail(message) {
  throw new Mismatch(message);
}

function check(condition, message) {
  if (!condition) fail(message);
}

function show(value) {
  return JSON.stringify(value, (_k, v) => (Buffer.isBuffer(v) ? `<bytes ${v.toString('utf8')}>` : v));
}

function parseArgs(argv) {
  const wanted = { '--ingest': 'ingest', '--query': 'query', '--stream': 'stream' };
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s, 2);
    if (!(flag in wanted)) fail(`unknown argument ${argv[i]}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) fail(`${flag} needs a value`);
    }
    out[wanted[flag]] = value;
  }
  for (const [flag, key] of Object.entries(wanted)) {
    if (!out[key]) fail(`missing ${flag}`);
  }
  return out;
}

async function loadModules() {
  try {
    const grpc = (await import('@grpc/grpc-js')).default;
    const protoLoader = (await import('@grpc/proto-loader')).default;
    const protobuf = (await import('protobufjs')).default;
    return { grpc, protoLoader, protobuf };
  } catch (err) {
    fail(`cannot load @grpc/grpc-js, @grpc/proto-loader or protobufjs (run npm ci in the repository root): ${err.message}`);
  }
}

// Credentials for every call: ALLSOURCE_TOKEN (an API key or access token), set in main().
let callMetadata = null;

// Promisified unary call with a deadline; the rejection is grpc-js's ServiceError (code, details, metadata).
function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, callMetadata, { deadline: Date.now() + DEADLINE_MS }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

// google.rpc.Status / ErrorInfo decoders, loaded with protobufjs from the vendored protos.
function rpcTypes(protobuf) {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTOS, target));
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
  root.resolveAll();
  return {
    Status: root.lookupType('google.rpc.Status'),
    ErrorInfo: root.lookupType('google.rpc.ErrorInfo'),
  };
}

function decodeErrorInfo(types, err) {
  const raw = err.metadata?.get('grpc-status-details-bin') ?? [];
  check(raw.length === 1, `expected one grpc-status-details-bin trailer, got ${raw.length}`);
  const status = types.Status.decode(raw[0]);
  check(status.code === err.code, `status detail code ${status.code} differs from the call's code ${err.code}`);
  const infos = (status.details || []).filter((any) => any.type_url === 'type.googleapis.com/google.rpc.ErrorInfo');
  check(infos.length === 1, `expected one ErrorInfo in the status details, got type urls ${show((status.details || []).map((d) => d.type_url))}`);
  const info = types.ErrorInfo.toObject(types.ErrorInfo.decode(infos[0].value), { defaults: true });
  return { status, info };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { grpc, protoLoader, protobuf } = await loadModules();

  const definition = protoLoader.loadSync(
    ['allsource/v1/event.proto', 'allsource/v1/ingest.proto', 'allsource/v1/query.proto'].map((p) => path.join(PROTOS, p)),
    { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTOS] },
  );
  const v1 = grpc.loadPackageDefinition(definition).allsource.v1;
  const credentials = grpc.credentials.createInsecure();
  callMetadata = new grpc.Metadata();
  if (process.env.ALLSOURCE_TOKEN) callMetadata.set('authorization', `Bearer ${process.env.ALLSOURCE_TOKEN}`);
  const ingest = new v1.IngestService(args.ingest, credentials);
  const query = new v1.QueryService(args.query, credentials);
  const types = rpcTypes(protobuf);

  try {
    // (a) Append three events to a new stream.
    const clientId = crypto.randomUUID();
    const correlation = crypto.randomUUID();
    const proposed = [
      { event_type: 'ItemCreated', payload: { name: 'widget', qty: 1 }, event_id: '', metadata: {} },
      { event_type: 'ItemRestocked', payload: { qty: 5, color: 'red' }, event_id: clientId, metadata: { correlation_id: correlation, source: 'node' } },
      { event_type: 'ItemRenamed', payload: { name: 'gadget', tags: ['a', 'ü'] }, event_id: '', metadata: {} },
    ].map((e) => ({ ...e, bytes: Buffer.from(JSON.stringify(e.payload), 'utf8') }));
    const appended = await unary(ingest, 'AppendEvents', {
      stream_id: args.stream,
      expected_version: { kind: 'EXPECTED_VERSION_KIND_NO_STREAM' },
      events: proposed.map((e) => ({
        event_id: e.event_id,
        event_type: e.event_type,
        payload: e.bytes,
        metadata: e.metadata,
        occurred_at: { seconds: '1700000000', nanos: 123000000 },
      })),
    });
    check(appended.first_version === '1' && appended.last_version === '3',
      `append versions ${appended.first_version}..${appended.last_version}, expected 1..3`);
    check(BigInt(appended.last_position) - BigInt(appended.first_position) === 2n,
      `append positions ${appended.first_position}..${appended.last_position} are not three consecutive positions`);
    check(appended.deduplicated === false, 'first append reported deduplicated');
    check(appended.event_ids.length === 3, `append returned ${appended.event_ids.length} event ids`);
    check(appended.event_ids[1] === clientId, `client-chosen id ${clientId} came back as ${appended.event_ids[1]}`);
    const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    check(appended.event_ids.every((id) => uuidRe.test(id)), `event ids are not canonical UUIDs: ${show(appended.event_ids)}`);
    check(new Set(appended.event_ids).size === 3, `event ids are not distinct: ${show(appended.event_ids)}`);

    // (b) Read it back forwards, following page tokens (page size 2 forces a second page).
    const events = [];
    let token = '';
    let streamVersion = '';
    for (let pages = 0; ; pages++) {
      check(pages < 10, 'ReadStream kept returning page tokens');
      const page = await unary(query, 'ReadStream', {
        stream_id: args.stream, direction: 'READ_DIRECTION_FORWARD', page_size: 2, page_token: token,
      });
      events.push(...page.events);
      streamVersion = page.stream_version;
      token = page.next_page_token;
      if (!token) break;
    }
    check(streamVersion === '3', `ReadStream stream_version ${streamVersion}, expected 3`);
    const versions = events.map((e) => Number(e.version));
    check(isDeepStrictEqual(versions, [1, 2, 3]), `ReadStream versions ${show(versions)}, expected [1,2,3]`);
    const positions = events.map((e) => Number(e.position));
    const expectedPositions = [0, 1, 2].map((i) => Number(BigInt(appended.first_position) + BigInt(i)));
    check(isDeepStrictEqual(positions, expectedPositions), `ReadStream positions ${show(positions)}, append said ${show(expectedPositions)}`);
    events.forEach((got, i) => {
      const want = proposed[i];
      const where = `event ${i + 1}`;
      check(got.event_id === appended.event_ids[i], `${where}: id ${got.event_id}, append returned ${appended.event_ids[i]}`);
      check(got.stream_id === args.stream, `${where}: stream_id ${got.stream_id}`);
      check(got.event_type === want.event_type, `${where}: type ${got.event_type}, expected ${want.event_type}`);
      check(Buffer.isBuffer(got.payload) && got.payload.equals(want.bytes),
        `${where}: payload ${show(got.payload)} is not byte-for-byte ${show(want.bytes)}`);
      check(isDeepStrictEqual(JSON.parse(got.payload.toString('utf8')), want.payload), `${where}: payload JSON differs`);
      check(isDeepStrictEqual({ ...got.metadata }, want.metadata), `${where}: metadata ${show(got.metadata)}, expected ${show(want.metadata)}`);
      check(got.occurred_at && got.occurred_at.seconds === '1700000000' && got.occurred_at.nanos === 123000000,
        `${where}: occurred_at ${show(got.occurred_at)} changed`);
      check(got.recorded_at && got.recorded_at.seconds !== '0', `${where}: recorded_at missing`);
      check(got.tenant_id !== '', `${where}: tenant_id empty`);
    });

    // (c) Appending with NO_STREAM again must fail: ABORTED with ErrorInfo WRONG_EXPECTED_VERSION.
    let conflict = null;
    try {
      await unary(ingest, 'AppendEvents', {
        stream_id: args.stream,
        expected_version: { kind: 'EXPECTED_VERSION_KIND_NO_STREAM' },
        events: [{ event_type: 'ItemCreated', payload: Buffer.from('{"name":"again"}') }],
      });
    } catch (err) {
      conflict = err;
    }
    check(conflict !== null, 'second append with expected NO_STREAM succeeded');
    check(conflict.code === grpc.status.ABORTED,
      `conflicting append failed with code ${conflict.code} (${grpc.status[conflict.code]}): ${conflict.details}; expected ABORTED`);
    const { info } = decodeErrorInfo(types, conflict);
    check(info.reason === 'WRONG_EXPECTED_VERSION', `ErrorInfo reason ${info.reason}, expected WRONG_EXPECTED_VERSION`);
    check(info.metadata.actual_version === '3', `ErrorInfo metadata ${show(info.metadata)}: actual_version should be "3"`);

    // (d) The folded entity state merges top-level keys in version order.
    const state = await unary(query, 'GetEntityState', { stream_id: args.stream });
    const merged = JSON.parse(state.state.toString('utf8'));
    const expectedState = Object.assign({}, ...proposed.map((e) => e.payload));
    check(isDeepStrictEqual(merged, expectedState), `entity state ${show(merged)}, expected ${show(expectedState)}`);
    check(state.version === '3', `entity state version ${state.version}, expected 3`);

    // (e) Summary.
    process.stdout.write(JSON.stringify({
      ok: true,
      stream: args.stream,
      versions,
      positions,
      event_ids: appended.event_ids,
      event_types: events.map((e) => e.event_type),
      client_event_id: clientId,
      state: merged,
      state_version: Number(state.version),
      conflict_code: grpc.status[conflict.code],
      conflict_reason: info.reason,
      conflict_domain: info.domain,
      conflict_metadata: info.metadata,
    }) + '\n');
  } finally {
    ingest.close();
    query.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    if (err instanceof Mismatch) {
      process.stderr.write(`node client: ${err.message}\n`);
    } else if (err && typeof err.code === 'number' && err.details !== undefined) {
      process.stderr.write(`node client: unexpected gRPC error ${err.code}: ${err.details}\n`);
    } else {
      process.stderr.write(`node client: ${err && err.stack ? err.stack : err}\n`);
    }
    process.exit(1);
  },
);
