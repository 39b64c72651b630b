#!/usr/bin/env node
// Compat check with kafkajs: create a topic, produce keyed records, read them back.
//
// kafkajs has no partition-assign API, so reading back goes through a consumer
// group (JoinGroup/SyncGroup/Heartbeat/OffsetFetch). When that fails, the end
// offsets are still fetched so the report can tell whether the records arrived.
//
// Output contract (shared with the Python clients): records as
// "PARTITION<TAB>KEY<TAB>VALUE" lines on stdout for compat/python/verify.py;
// diagnostics on stderr, a fatal problem ends with "error: ..." and exit 1.
//
// The group member commits what it read (OffsetCommit) and the committed offsets are
// checked against the end offsets (OffsetFetch, ListOffsets).
//
// Security: --ca FILE (TLS, the broker's CA), --cert/--key FILES (a client certificate),
// --sasl MECHANISM (plain, scram-sha-256, scram-sha-512) with --username/--password. With
// --expect-auth-failure the client only connects (admin.connect) and succeeds when the
// broker refuses it, printing the names of the error and its causes, one a line (e.g.
// KafkaJSSASLAuthenticationError).
'use strict';

const fs = require('fs');
const { Kafka, logLevel, Partitioners } = require('kafkajs');

function parseArgs(argv) {
  const args = { partitions: 3, keys: 10, perKey: 30, timeout: 30 };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    switch (name) {
      case '--bootstrap': args.bootstrap = value; break;
      case '--topic': args.topic = value; break;
      case '--partitions': args.partitions = Number(value); break;
      case '--keys': args.keys = Number(value); break;
      case '--per-key': args.perKey = Number(value); break;
      case '--timeout': args.timeout = Number(value); break;
      // SASL_SSL with OAUTHBEARER: the CA of the broker's certificate, the principal of an
      // unsecured (alg none) token, and how long before a session's end kafkajs
      // re-authenticates (KIP-368; its default, 10 s, is longer than short test sessions).
      case '--ca': args.ca = value; break;
      case '--oauth-sub': args.oauthSub = value; break;
      case '--reauth-threshold': args.reauthThreshold = Number(value); break;
      // SASL_SSL with SCRAM: MECHANISM:USER:PASSWORD (scram-sha-256 or scram-sha-512).
      case '--scram': args.scram = value; break;
      // An existing topic (the user may lack CREATE), and the consumer group to read it in.
      case '--no-create': args.noCreate = value === 'true'; break;
      case '--group': args.group = value; break;
      case '--cert': args.cert = value; break;
      case '--key': args.key = value; break;
      case '--sasl': args.sasl = value; break;
      case '--username': args.username = value; break;
      case '--password': args.password = value; break;
      case '--expect-auth-failure': args.expectAuthFailure = true; i--; break;
      default: throw new Error(`unknown argument ${name}`);
    }
  }
  if (!args.bootstrap || !args.topic) throw new Error('--bootstrap and --topic are required');
  return args;
}

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

// Logs go to stderr so stdout carries only records.
const stderrLog = () => ({ namespace, label, log }) => {
  const { message, ...extra } = log;
  process.stderr.write(`kafkajs ${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`);
};

// unsecuredToken is an unsigned JWT for sub, valid for an hour, as Kafka's unsecured login
// module makes them.
function unsecuredToken(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none' })}.${b64({ sub, iat: now, exp: now + 3600 })}.`;
}

// security returns kafkajs's ssl and sasl options from the arguments.
function security(args) {
  const opts = {};
  if (args.ca) {
    opts.ssl = { ca: [fs.readFileSync(args.ca, 'utf8')], servername: 'localhost' };
    if (args.cert) {
      opts.ssl.cert = fs.readFileSync(args.cert, 'utf8');
      opts.ssl.key = fs.readFileSync(args.key, 'utf8');
    }
  }
  if (args.sasl) {
    opts.sasl = { mechanism: args.sasl, username: args.username, password: args.password };
  }
  return opts;
}

// expectAuthFailure connects an admin client; the broker must refuse it.
async function expectAuthFailure(kafka) {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } catch (e) {
    // The error and its causes (a retried connection error is wrapped), one name a line.
    for (let c = e; c; c = c.originalError || c.cause) {
      process.stdout.write(`${c.name}\n`);
      process.stderr.write(`refused: ${c.name}: ${c.message}\n`);
    }
    return;
  }
  await admin.disconnect().catch(() => {});
  fail('connected and listed the topics; want the login refused');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const timeoutMs = args.timeout * 1000;
  const config = {
    clientId: 'compat-kafkajs',
    brokers: [args.bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLog,
    retry: { retries: args.expectAuthFailure ? 0 : 5 },
  };
  Object.assign(config, security(args));
  if (args.oauthSub) {
    config.sasl = { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: unsecuredToken(args.oauthSub) }) };
  }
  if (args.scram) {
    const [mechanism, username, ...password] = args.scram.split(':');
    config.sasl = { mechanism, username, password: password.join(':') };
  }
  if (args.reauthThreshold !== undefined) config.reauthenticationThreshold = args.reauthThreshold;
  const kafka = new Kafka(config);
  if (args.expectAuthFailure) {
    await expectAuthFailure(kafka);
    return;
  }

  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (e) {
    fail(`connect (ApiVersions/SASL/Metadata): ${e.message}`);
  }
  if (!args.noCreate) {
    try {
      const created = await admin.createTopics({
        topics: [{ topic: args.topic, numPartitions: args.partitions, replicationFactor: 1 }],
        waitForLeaders: true,
        timeout: timeoutMs,
      });
      if (!created) fail(`create topic (CreateTopics): ${args.topic} already exists`);
    } catch (e) {
      fail(`create topic (CreateTopics): ${e.message}`);
    }
  }

  const messages = [];
  for (let seq = 0; seq < args.perKey; seq++) {
    for (let k = 0; k < args.keys; k++) {
      messages.push({ key: `key-${k}`, value: `key-${k}:${seq}` });
    }
  }
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  try {
    await producer.connect();
    // One request per sequence round, so ordering across requests is exercised too.
    for (let i = 0; i < messages.length; i += args.keys) {
      await producer.send({ topic: args.topic, acks: -1, messages: messages.slice(i, i + args.keys) });
    }
    await producer.disconnect();
  } catch (e) {
    fail(`produce (Produce): ${e.message}`);
  }

  const want = messages.length;
  let got = 0;
  const groupId = args.group || `compat-kafkajs-${args.topic}`;
  const next = new Map(); // partition -> the offset after the last record read
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    retry: { retries: 2 },
  });
  let done;
  const allRead = new Promise((resolve) => { done = resolve; });
  let crashed = null;
  consumer.on(consumer.events.CRASH, (e) => { crashed = e.payload.error; done(); });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [args.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        process.stdout.write(`${partition}\t${message.key.toString()}\t${message.value.toString()}\n`);
        next.set(partition, (BigInt(message.offset) + 1n).toString());
        got++;
        if (got >= want) done();
      },
    });
    const timer = setTimeout(done, timeoutMs);
    await allRead;
    clearTimeout(timer);
    if (got >= want) {
      const offsets = [...next].map(([partition, offset]) => ({ topic: args.topic, partition, offset }));
      await consumer.commitOffsets(offsets).catch((e) => fail(`commit (OffsetCommit): ${e.message}`));
    }
  } catch (e) {
    crashed = e;
  }
  await consumer.disconnect().catch(() => {});

  if (got < want) {
    let stored = 'unknown';
    try {
      const offsets = await admin.fetchTopicOffsets(args.topic);
      stored = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
    } catch (e) {
      stored = `unknown (ListOffsets: ${e.message})`;
    }
    await admin.disconnect().catch(() => {});
    const why = crashed ? `consumer group failed: ${crashed.message}` : 'timed out';
    fail(`consume via consumer group: ${why}; read ${got} of ${want}, topic holds ${stored} records`);
  }
  await checkCommitted(admin, groupId, args.topic);
  await admin.disconnect();
}

// checkCommitted fails unless the group's committed offsets are the topic's end offsets.
async function checkCommitted(admin, groupId, topic) {
  let ends; let committed;
  try {
    ends = await admin.fetchTopicOffsets(topic);
    [{ partitions: committed }] = await admin.fetchOffsets({ groupId, topics: [topic] });
  } catch (e) {
    fail(`committed offsets (OffsetFetch/ListOffsets): ${e.message}`);
  }
  const fmt = (list, key) => list.map((p) => `${p.partition}:${p[key]}`).sort().join(' ');
  if (fmt(committed, 'offset') !== fmt(ends, 'high')) {
    fail(`group ${groupId}: committed offsets ${fmt(committed, 'offset')}, want the end offsets ${fmt(ends, 'high')} (OffsetCommit/OffsetFetch)`);
  }
}

main().catch((e) => fail(e.stack || String(e)));
